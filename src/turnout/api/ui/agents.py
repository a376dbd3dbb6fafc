"""The Agents screen (tenant admins; platform admins see their own tenant's): agents, their API
keys (shown once, revoked in a click) and the models each may use, as toggles. It calls the
services behind ``/api/v2/agents``, so a tenant admin reaches only their tenant's agents here too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from turnout.agents.model_config import BulkFilter, ConfigUpdate, ModelSelection
from turnout.agents.schemas import AgentCreate
from turnout.api.deps import container_of
from turnout.api.ui.catalog import CAPABILITIES, TIERS
from turnout.api.ui.render import field_errors, page, posted_form, service_error
from turnout.api.ui.session import UiUser, require
from turnout.catalog.schemas import ModelFilter
from turnout.errors import TurnoutError

router = APIRouter(prefix="/ui/agents", include_in_schema=False)


def _admin(request: Request) -> UiUser:
    return require(
        request, container_of(request).jwt, "tenant_admin", "platform_admin", what="the Agents screen"
    )


async def _listing(request: Request, user: UiUser, status_code: int = 200, **context: Any) -> Response:
    agents = await container_of(request).agents.list(user.principal)
    return page(request, user, "agents.html", status_code=status_code, agents=agents.items, **context)


@router.get("")
async def agents(request: Request) -> Response:
    return await _listing(request, _admin(request), form={})


@router.post("")
async def create_agent(request: Request) -> Response:
    user = _admin(request)
    form = {k: str(v) for k, v in (await posted_form(request, user)).items() if k != "csrf"}
    body = {k: v for k, v in form.items() if v.strip()}
    try:
        agent = await container_of(request).agents.create(AgentCreate.model_validate(body), user.principal)
    except ValidationError as exc:
        return await _listing(request, user, 400, form=form, errors=field_errors(exc))
    except TurnoutError as exc:
        return await _listing(request, user, exc.status_code, form=form, errors=service_error(exc))
    return RedirectResponse(f"/ui/agents/{agent.id}", status_code=303)


async def _detail(request: Request, user: UiUser, agent_id: str, **context: Any) -> Response:
    container = container_of(request)
    agent = await container.agents.get(agent_id, user.principal)
    keys = await container.agents.list_keys(agent_id, user.principal)
    configured = await container.agent_models.list_models(agent_id, user.principal, 1, 500)
    search = (request.query_params.get("q") or "").strip()
    tier = request.query_params.get("cost_tier") or None
    capability = request.query_params.get("capability") or None
    try:
        flt = ModelFilter.model_validate(
            {"enabled": True, "available": True, "q": search or None, "cost_tier": tier}
            | ({"capability": [capability]} if capability else {})
        )
    except ValidationError:  # a hand-edited address: the unfiltered list
        flt, tier, capability = ModelFilter(enabled=True, available=True), None, None
    catalog = await container.models.list(flt, 1, 50)  # what may be added: enabled catalog models
    enabled = {m.model_id for m in configured.models if m.is_enabled}
    audit = await container.agent_models.audit(agent_id, user.principal, 50)
    return page(
        request,
        user,
        "agent.html",
        agent=agent,
        keys=keys.items,
        configured=configured,
        catalog=catalog,
        enabled=enabled,
        search=search,
        tier=tier,
        capability=capability,
        tiers=TIERS,
        capabilities=CAPABILITIES,
        audit=audit,
        **context,
    )


@router.get("/{agent_id}")
async def agent_detail(request: Request, agent_id: str) -> Response:
    return await _detail(request, _admin(request), agent_id)


@router.post("/{agent_id}/keys")
async def issue_key(request: Request, agent_id: str) -> Response:
    user = _admin(request)
    form = await posted_form(request, user)
    name = str(form.get("name") or "").strip() or None
    issued = await container_of(request).agents.issue_key(agent_id, name, user.principal)
    return await _detail(request, user, agent_id, issued=issued)  # the key, this once


@router.post("/{agent_id}/keys/{key_id}/revoke")
async def revoke_key(request: Request, agent_id: str, key_id: str) -> Response:
    user = _admin(request)
    await posted_form(request, user)
    await container_of(request).agents.revoke_key(agent_id, key_id, user.principal)
    return RedirectResponse(f"/ui/agents/{agent_id}", status_code=303)


@router.post("/{agent_id}/models")
async def set_models(request: Request, agent_id: str) -> Response:
    """Enable the models ticked in the form, or disable them (``enabled=false``)."""
    user = _admin(request)
    form = await posted_form(request, user)
    ids = [str(v) for v in form.getlist("model_id") if str(v)]
    enabled = form.get("enabled") != "false"
    if not ids:
        return await _detail(request, user, agent_id, errors={"model_id": "tick at least one model"})
    try:
        await container_of(request).agent_models.set_enabled(
            agent_id, ModelSelection(model_ids=ids), enabled, user.principal
        )
    except TurnoutError as exc:
        return await _detail(request, user, agent_id, errors=service_error(exc))
    return RedirectResponse(f"/ui/agents/{agent_id}", status_code=303)


@router.post("/{agent_id}/bulk")
async def bulk_models(request: Request, agent_id: str) -> Response:
    """ "Enable all free" (every free catalog model) or "Disable all" (every model of the agent)."""
    user = _admin(request)
    form = await posted_form(request, user)
    action = form.get("action")
    service = container_of(request).agent_models
    if action == "enable_free":
        selection = ModelSelection(bulk_filter=BulkFilter(cost_tier="free"))
        await service.set_enabled(agent_id, selection, True, user.principal)
    elif action == "disable_all":
        configured = await service.list_models(agent_id, user.principal, 1, 10_000)
        ids = [m.model_id for m in configured.models if m.is_enabled]
        if ids:
            await service.set_enabled(agent_id, ModelSelection(model_ids=ids), False, user.principal)
    else:
        return await _detail(request, user, agent_id, errors={"action": "unknown bulk action"})
    return RedirectResponse(f"/ui/agents/{agent_id}", status_code=303)


@router.post("/{agent_id}/priority")
async def set_priority(request: Request, agent_id: str) -> Response:
    """One model's ``priority_override`` for this agent (empty: back to the catalog's priority)."""
    user = _admin(request)
    form = await posted_form(request, user)
    model_id = str(form.get("model_id") or "")
    raw = str(form.get("priority_override") or "").strip()
    try:
        body = ConfigUpdate.model_validate({"priority_override": raw or None})
        await container_of(request).agent_models.update(agent_id, model_id, body, user.principal)
    except ValidationError as exc:
        return await _detail(
            request, user, agent_id, errors={"priority_override": field_errors(exc)["priority_override"]}
        )
    except TurnoutError as exc:
        return await _detail(request, user, agent_id, errors=service_error(exc))
    return RedirectResponse(f"/ui/agents/{agent_id}", status_code=303)
