"""The admins' report screens: call records (one opens to its attempts, tokens, cost and routing
decision), spend with budgets and alerts, and the performance dashboard. They call the services
behind ``/api/v2/messages``, ``/api/v2/spend``, ``/api/v2/budgets`` and
``/api/v2/models/performance``, so a tenant admin sees only their tenant's, as in the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from turnout.api.deps import container_of
from turnout.api.ui.render import field_errors, page, posted_form
from turnout.api.ui.session import UiUser, require
from turnout.errors import InvalidRequest, TurnoutError
from turnout.feedback.performance import ResetIn
from turnout.records.queries import MessageFilter
from turnout.records.spend import DIMENSIONS, SpendQuery

router = APIRouter(prefix="/ui", include_in_schema=False)
STATUSES = ("ok", "error", "cancelled")


def _admin(request: Request) -> UiUser:
    return require(request, container_of(request).jwt, "tenant_admin", "platform_admin", what="this screen")


def _given(params: Any, *names: str) -> dict[str, str]:
    return {name: value.strip() for name in names if (value := params.get(name) or "").strip()}


@router.get("/records")
async def records(request: Request) -> Response:
    user = _admin(request)
    raw = _given(request.query_params, "agent_id", "model", "status", "task_type")
    cursor = request.query_params.get("cursor") or None
    try:
        flt = MessageFilter.model_validate(raw)
        found = await container_of(request).messages.list(flt, user.principal, limit=50, cursor=cursor)
    except ValidationError as exc:
        return page(
            request, user, "records.html", status_code=400, raw=raw, errors=field_errors(exc), found=None
        )
    except TurnoutError as exc:
        return page(
            request,
            user,
            "records.html",
            status_code=exc.status_code,
            raw=raw,
            errors={"form": exc.message},
            found=None,
        )
    query = urlencode(raw)
    return page(request, user, "records.html", raw=raw, found=found, query=query, statuses=STATUSES)


@router.get("/records/{message_id}")
async def record(request: Request, message_id: str) -> Response:
    user = _admin(request)
    if len(message_id) > 36:
        raise InvalidRequest("message id must be at most 36 characters", param="message_id")
    detail = await container_of(request).messages.get(message_id, user.principal)
    return page(request, user, "record.html", record=detail)


@router.get("/spend")
async def spend(request: Request) -> Response:
    user = _admin(request)
    container = container_of(request)
    params = request.query_params
    group = params.get("group_by") or "model"
    raw = {"group_by": group, **_given(params, "from", "to")}
    try:
        query = SpendQuery.parse([group], raw.get("from"), raw.get("to"), {})
        report = await container.spend_reports.report(query, user.principal)
        errors: dict[str, str] = {}
    except TurnoutError as exc:
        report, errors = None, {exc.param or "form": exc.message}
    budgets = await container.spend_admin.list_budgets(user.principal)
    alerts = await container.spend.alerts.list(user.principal, 20)
    return page(
        request,
        user,
        "spend.html",
        status_code=400 if errors else 200,
        raw=raw,
        report=report,
        errors=errors,
        dimensions=sorted(DIMENSIONS),
        budgets=budgets.items,
        alerts=alerts.items,
    )


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    user = _admin(request)
    raw = _given(request.query_params, "task_type", "agent_id", "time_range")
    try:
        report = await container_of(request).performance.report(
            user.principal,
            task_type=raw.get("task_type"),
            agent_id=raw.get("agent_id"),
            model_id=None,
            time_range=raw.get("time_range"),
        )
        errors: dict[str, str] = {}
    except TurnoutError as exc:
        report, errors = None, {exc.param or "form": exc.message}
    return page(
        request,
        user,
        "dashboard.html",
        status_code=400 if errors else 200,
        raw=raw,
        report=report,
        errors=errors,
    )


@router.post("/dashboard/reset")
async def reset(request: Request) -> Response:
    """Forget a model's learned experience (the page asks to confirm first)."""
    user = _admin(request)
    form = await posted_form(request, user)
    body: dict[str, Any] = {k: str(v) for k, v in form.items() if k != "csrf" and str(v).strip()}
    if "task_type" in body:
        body["task_types"] = [body.pop("task_type")]
    try:
        result = await container_of(request).performance.reset(ResetIn.model_validate(body), user.principal)
    except ValidationError as exc:
        return page(request, user, "_reset_result.html", status_code=400, errors=field_errors(exc))
    return page(request, user, "_reset_result.html", result=result)
