"""The Routing screen: policies (normal, deep research, code, ops...) and which task uses which,
editable by platform admins, and an "explain" form that shows what would be chosen for a message
and why, without calling any model. It calls the services behind ``/api/v2/routing``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from turnout.api.deps import container_of
from turnout.api.routing import explain_body
from turnout.api.ui.render import field_errors, page, posted_form, service_error
from turnout.api.ui.session import UiUser, require
from turnout.domain.policies import PolicyBody
from turnout.errors import TurnoutError

router = APIRouter(prefix="/ui/routing", include_in_schema=False)
NUMBERS = ("max_cost_per_task", "max_tokens", "temperature")


def _admin(request: Request) -> UiUser:
    return require(
        request, container_of(request).jwt, "tenant_admin", "platform_admin", what="the Routing screen"
    )


def _platform_admin(request: Request) -> UiUser:
    return require(request, container_of(request).jwt, "platform_admin", what="changing routing policies")


async def _screen(request: Request, user: UiUser, status_code: int = 200, **context: Any) -> Response:
    container = container_of(request)
    snapshot = container.snapshots.current
    tenant = user.principal.tenant_id
    agents = sorted(a.id for (t, _), a in snapshot.agents.items() if t == tenant and a.is_active)
    mapping = await container.routing_admin.task_policies()
    return page(
        request,
        user,
        "routing.html",
        status_code=status_code,
        policies=await container.routing_admin.list_policies(),
        task_policies=mapping,
        tasks=sorted({*mapping, *_known_tasks(container.routing_admin.task_maps()), "general"}),
        agents=agents,
        **context,
    )


def _known_tasks(maps: dict[str, Any]) -> set[str]:
    """Every task type detection can name (so an unmapped one can be given a policy here too)."""
    found = set(maps.get("keyword_to_task") or {})
    for name in ("tool_to_task", "mime_to_task"):
        found |= {str(task) for task in (maps.get(name) or {}).values()}
    return found


@router.get("")
async def routing(request: Request) -> Response:
    return await _screen(request, _admin(request))


@router.post("/policies/{name}")
async def edit_policy(request: Request, name: str) -> Response:
    """Change a policy's description, limits and whether it is active (its models are kept)."""
    user = _platform_admin(request)
    form = await posted_form(request, user)
    container = container_of(request)
    try:
        current = await container.routing_admin.get_policy(name)
        body: dict[str, Any] = current.model_dump(include=set(PolicyBody.model_fields))  # no read-only fields
        body["description"] = str(form.get("description") or "")
        for field in NUMBERS:
            raw = str(form.get(field) or "").strip()
            body[field] = raw or None
        body["is_active"] = form.get("is_active") == "on"
        await container.routing_admin.replace_policy(name, PolicyBody.model_validate(body))
    except ValidationError as exc:
        return await _screen(request, user, 400, editing=name, errors=field_errors(exc))
    except TurnoutError as exc:
        return await _screen(request, user, exc.status_code, editing=name, errors=service_error(exc))
    return RedirectResponse("/ui/routing", status_code=303)


@router.post("/task-policies")
async def edit_task_policies(request: Request) -> Response:
    user = _platform_admin(request)
    form = await posted_form(request, user)
    mapping = {k.removeprefix("task:"): str(v) for k, v in form.items() if k.startswith("task:") and str(v)}
    try:
        await container_of(request).routing_admin.set_task_policies(mapping, user.principal)
    except TurnoutError as exc:
        return await _screen(request, user, exc.status_code, map_errors=service_error(exc))
    return RedirectResponse("/ui/routing", status_code=303)


@router.post("/explain")
async def explain(request: Request) -> Response:
    """What would be chosen for this message, and why (no model is called)."""
    user = _admin(request)
    form = await posted_form(request, user)
    message = str(form.get("message") or "").strip()
    agent_id = str(form.get("agent_id") or "").strip()
    if not message:
        return await _screen(request, user, 400, explain_errors={"message": "type a message to explain"})
    body: dict[str, Any] = {"messages": [{"role": "user", "content": message}]}
    if agent_id:
        body["agent_id"] = agent_id
    try:
        decision = explain_body(container_of(request), user.principal, body)
    except TurnoutError as exc:
        return await _screen(request, user, exc.status_code, explain_errors=service_error(exc), asked=message)
    return await _screen(request, user, decision=decision, asked=message, asked_agent=agent_id)
