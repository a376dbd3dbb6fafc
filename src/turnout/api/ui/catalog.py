"""The Models screen (platform admins): the catalog with filters and server-side pages, and bulk
enable or disable by the current filter. It calls the services behind ``/api/v2/admin/models``."""

from __future__ import annotations

from typing import Any, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from turnout.api.deps import container_of
from turnout.api.ui.render import field_errors, page, posted_form, service_error
from turnout.api.ui.session import UiUser, require
from turnout.catalog.schemas import (
    BulkModelUpdate,
    Capability,
    CostTier,
    ModelCreate,
    ModelFilter,
    ModelUpdate,
)
from turnout.errors import TurnoutError

router = APIRouter(prefix="/ui/models", include_in_schema=False)
PER_PAGE = 50
TIERS: tuple[str, ...] = get_args(CostTier)
CAPABILITIES: tuple[str, ...] = get_args(Capability)


def _admin(request: Request) -> UiUser:
    return require(request, container_of(request).jwt, "platform_admin", what="the Models screen")


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
    form = await posted_form(request, user)
    _, flt = _filter_of(form)
    enabled = form.get("enabled") == "true"
    result = await container_of(request).models.bulk_set_enabled(
        BulkModelUpdate(filter=flt, is_enabled=enabled)
    )
    return page(request, user, "_bulk_result.html", result=result, enabled=enabled)


EDITABLE = ("display_name", "priority", "cost_tier", "ctx_length", "pricing_input", "pricing_output", "alias")


def _model_body(form: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The edited fields as the API takes them: capabilities as a list; an empty field unchanged."""
    body: dict[str, Any] = {k: str(form.get(k)).strip() for k in fields if str(form.get(k) or "").strip()}
    body["capabilities"] = [str(c) for c in form.getlist("capability") if str(c)]
    return body


async def _detail(
    request: Request, user: UiUser, model_id: str, status_code: int = 200, **context: Any
) -> Response:
    container = container_of(request)
    model = await container.models.get(model_id)
    usage = await container.performance.report(
        user.principal, task_type=None, agent_id=None, model_id=model_id, time_range=None
    )
    return page(
        request,
        user,
        "model.html",
        status_code=status_code,
        model=model,
        usage=usage["performance"],
        tiers=TIERS,
        capabilities=CAPABILITIES,
        **context,
    )


def _shown(value: Any) -> Any:
    """A value as the form shows it, to tell a changed field from one sent back as it was."""
    if isinstance(value, list):
        return sorted(str(v) for v in value)
    if value is None:
        return ""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


@router.get("/detail")
async def model_detail(request: Request, id: str) -> Response:
    """Every field of one model, its usage, and the form that edits it (``?id=`` as model ids hold
    slashes)."""
    return await _detail(request, _admin(request), id)


@router.post("/detail")
async def edit_model(request: Request, id: str) -> Response:
    user = _admin(request)
    form = await posted_form(request, user)
    container = container_of(request)
    try:
        current = (await container.models.get(id)).model_dump()
        changed = {  # only what the admin changed: an edited field is kept through later syncs
            k: v for k, v in _model_body(form, EDITABLE).items() if _shown(current.get(k)) != _shown(v)
        }
        if "alias" not in changed and current.get("alias") and not str(form.get("alias") or "").strip():
            changed["alias"] = None  # emptied: the alias is removed
        await container.models.update(id, ModelUpdate.model_validate(changed))
    except ValidationError as exc:
        return await _detail(request, user, id, 400, errors=field_errors(exc))
    except TurnoutError as exc:
        return await _detail(request, user, id, exc.status_code, errors=service_error(exc))
    return await _detail(request, user, id, saved=True)


@router.get("/new")
async def new_model(request: Request) -> Response:
    user = _admin(request)
    providers = [p.id for p in await container_of(request).providers.list()]
    return page(request, user, "model_new.html", providers=providers, capabilities=CAPABILITIES, form={})


@router.post("/new")
async def add_model(request: Request) -> Response:
    """Register a model its provider does not list (a fine-tune, a local model)."""
    user = _admin(request)
    form = await posted_form(request, user)
    fields = (
        "provider_id",
        "external_id",
        "display_name",
        "priority",
        "ctx_length",
        "pricing_input",
        "pricing_output",
        "alias",
    )
    container = container_of(request)
    try:
        created = await container.models.create(ModelCreate.model_validate(_model_body(form, fields)))
    except (ValidationError, TurnoutError) as exc:
        errors = field_errors(exc) if isinstance(exc, ValidationError) else service_error(exc)
        providers = [p.id for p in await container.providers.list()]
        shown = {k: str(v) for k, v in form.items()}
        return page(
            request,
            user,
            "model_new.html",
            status_code=400 if isinstance(exc, ValidationError) else exc.status_code,
            providers=providers,
            capabilities=CAPABILITIES,
            form=shown,
            errors=errors,
        )
    return RedirectResponse(f"/ui/models/detail?id={quote(created.id, safe='')}", status_code=303)
