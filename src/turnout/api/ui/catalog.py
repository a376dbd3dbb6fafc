"""The Models screen (platform admins): the catalog with filters and server-side pages, and bulk
enable or disable by the current filter. It calls the services behind ``/api/v2/admin/models``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from turnout.api.deps import container_of
from turnout.api.ui.render import field_errors, page, read_form
from turnout.api.ui.session import UiUser, check_csrf, signed_in
from turnout.catalog.schemas import BulkModelUpdate, ModelFilter
from turnout.errors import Forbidden

router = APIRouter(prefix="/ui/models", include_in_schema=False)
PER_PAGE = 50
TIERS = ("free", "low", "standard", "premium")
CAPABILITIES = ("text", "vision", "code", "audio", "long_context", "function_calling")


def _admin(request: Request) -> UiUser:
    user = signed_in(request, container_of(request).jwt)
    if not user.is_platform_admin:
        raise Forbidden("the Models screen needs the platform_admin role")
    return user


def _filter_of(params: Any) -> tuple[dict[str, Any], ModelFilter]:
    """The filter the form (or the page's query string) asks for; empty fields are no filter."""
    raw: dict[str, Any] = {
        "provider": (params.get("provider") or "").strip() or None,
        "cost_tier": params.get("cost_tier") or None,
        "capability": [c for c in params.getlist("capability") if c],
        "q": (params.get("q") or "").strip() or None,
    }
    return raw, ModelFilter.model_validate({k: v for k, v in raw.items() if v})


@router.get("")
async def models(request: Request) -> Response:
    user = _admin(request)
    container = container_of(request)
    params = request.query_params
    try:
        raw, flt = _filter_of(params)
        number = max(1, min(100_000, int(params.get("page") or 1)))
    except ValidationError as exc:
        return page(
            request, user, "models.html", status_code=400, errors=field_errors(exc), raw={}, result=None
        )
    except ValueError:
        number = 1
        raw, flt = _filter_of(params)
    result = await container.models.list(flt, number, PER_PAGE)
    query = urlencode(
        [(k, v) for k, v in raw.items() if v and k != "capability"]
        + [("capability", c) for c in raw["capability"]]
    )
    providers = [p.id for p in await container.providers.list()]
    template = "_models_table.html" if request.headers.get("hx-target") == "models-table" else "models.html"
    return page(
        request,
        user,
        template,
        result=result,
        raw=raw,
        query=query,
        pages=max(1, -(-result.total // PER_PAGE)),
        providers=providers,
        tiers=TIERS,
        capabilities=CAPABILITIES,
    )


@router.post("/bulk")
async def bulk(request: Request) -> Response:
    """Enable or disable every model the current filter matches."""
    user = _admin(request)
    form = await read_form(request)
    check_csrf(user, str(form.get("csrf") or ""))
    _, flt = _filter_of(form)
    enabled = form.get("enabled") == "true"
    result = await container_of(request).models.bulk_set_enabled(
        BulkModelUpdate(filter=flt, is_enabled=enabled)
    )
    return page(request, user, "_bulk_result.html", result=result, enabled=enabled)
