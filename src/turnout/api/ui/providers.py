"""The Providers screen (platform admins): the list, adding one from a template, sync, connection
test and disable. Every action calls the same services as ``/api/v2/admin/providers``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response, StreamingResponse

from turnout.api.admin_providers import connection_test
from turnout.api.deps import container_of
from turnout.api.ui.render import field_errors, page, posted_form, render_fragment, service_error
from turnout.api.ui.session import UiUser, check_csrf, require
from turnout.catalog.schemas import ModelFilter, ProviderCreate, ProviderUpdate
from turnout.catalog.templates import TEMPLATES as CATALOG_TEMPLATES
from turnout.catalog.templates import ProviderTemplate
from turnout.errors import TurnoutError
from turnout.providers.registry import PROVIDER_TYPES

router = APIRouter(prefix="/ui/providers", include_in_schema=False)


@dataclass(frozen=True)
class Template:
    """One click fills the add form for a well-known provider (hidden fields carry its pricing)."""

    key: str
    label: str
    provider_type: str
    api_base: str
    price_id: str = ""
    self_hosted: str = ""  # "true" or "false"; "" to detect


def _button(template: ProviderTemplate) -> Template:
    local = " (local)" if template.self_hosted and "://localhost" in (template.api_base or "") else ""
    return Template(
        template.id,
        template.display_name + local,
        template.provider_type,
        template.api_base or f"{template.api_base_example}{template.api_base_suffix}",
        template.stored_price_id() or "",
        str(template.self_hosted).lower(),
    )


#: The catalog's templates this form can fill (a registered type, an API key at most, no region),
#: then the simulator's.
TEMPLATES = [
    *(
        _button(t)
        for t in CATALOG_TEMPLATES
        if t.spec is not None and "api_key" in t.spec.credentials.fields and set(t.requires) <= {"api_base"}
    ),
    Template("sim", "Turnout simulator (turnout simulate --port 8090)", "openai", "http://127.0.0.1:8090/v1"),
]


def _admin(request: Request) -> UiUser:
    return require(request, container_of(request).jwt, "platform_admin", what="the Providers screen")


async def _listing(request: Request, user: UiUser, status_code: int = 200, **context: Any) -> Response:
    providers = await container_of(request).providers.list()
    return page(
        request,
        user,
        "providers.html",
        status_code=status_code,
        providers=providers,
        templates=TEMPLATES,
        types=PROVIDER_TYPES,
        **context,
    )


@router.get("")
async def providers(request: Request) -> Response:
    return await _listing(request, _admin(request), form={})


@router.post("")
async def add_provider(request: Request) -> Response:
    user = _admin(request)
    form = {k: str(v) for k, v in (await posted_form(request, user)).items() if k != "csrf"}
    body = {k: v.strip() for k, v in form.items() if v.strip()}
    try:
        created = await container_of(request).providers.create(
            ProviderCreate.model_validate(body), user.principal
        )
    except ValidationError as exc:
        return await _listing(request, user, 400, form=form, errors=field_errors(exc), adding=True)
    except TurnoutError as exc:
        return await _listing(
            request, user, exc.status_code, form=form, errors=service_error(exc), adding=True
        )
    return RedirectResponse(f"/ui/providers/{created.id}", status_code=303)


@router.get("/{provider_id}")
async def provider_detail(request: Request, provider_id: str) -> Response:
    user = _admin(request)
    container = container_of(request)
    provider = await container.providers.get(provider_id)
    models = await container.models.list(ModelFilter(provider=provider_id), 1, 50)
    return page(request, user, "provider.html", provider=provider, models=models)


@router.post("/{provider_id}/sync")
async def sync_provider(request: Request, provider_id: str) -> Response:
    """Sync now, streaming its progress as server-sent events (``progress``: phase, done, total),
    then the result panel's HTML (``result``). The sync runs to its end if the page is left."""
    user = _admin(request)
    check_csrf(user, request.headers.get("x-csrf-token"))
    updates: asyncio.Queue[tuple[str, int, int]] = asyncio.Queue()
    work = asyncio.ensure_future(
        container_of(request).sync.sync(provider_id, lambda *step: updates.put_nowait(step))
    )

    async def events() -> AsyncIterator[bytes]:
        while not work.done() or not updates.empty():
            waiter = asyncio.ensure_future(updates.get())
            await asyncio.wait({waiter, work}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                waiter.cancel()
                continue
            phase, done, total = waiter.result()
            step = {"phase": phase, "done": done, "total": total}
            yield b"event: progress\ndata: " + orjson.dumps(step) + b"\n\n"
        try:
            html = render_fragment("_sync_result.html", user, result=work.result())
        except TurnoutError as exc:
            html = render_fragment("_sync_result.html", user, error=exc.message)
        yield b"event: result\ndata: " + orjson.dumps({"html": html}) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-store"})


@router.post("/{provider_id}/test")
async def test_provider(request: Request, provider_id: str) -> Response:
    user = _admin(request)
    check_csrf(user, request.headers.get("x-csrf-token"))
    result = await connection_test(container_of(request), provider_id)
    return page(request, user, "_test_result.html", **result.model_dump())


@router.post("/{provider_id}/active")
async def set_active(request: Request, provider_id: str) -> Response:
    user = _admin(request)
    form = await posted_form(request, user)
    active = form.get("active") == "true"
    await container_of(request).providers.update(provider_id, ProviderUpdate(is_active=active))
    return RedirectResponse(f"/ui/providers/{provider_id}", status_code=303)
