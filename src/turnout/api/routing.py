"""Routing API: policies, task maps, decision log and explain (`/api/v2/routing`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request

from turnout.api.auth import AnyCaller, require_roles
from turnout.api.deps import container_of as _container
from turnout.api.parse import decode_json, parse_chat
from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.domain.policies import PolicyBody, PolicyIn, PolicyOut
from turnout.errors import InvalidRequest, NotFound
from turnout.feedback.recent import decision_outcome
from turnout.feedback.sharing import SharingIn, SharingOut
from turnout.routing.explain import decision_dict
from turnout.store.messages import Message
from turnout.translate.responses import message_id_for

router = APIRouter(prefix="/api/v2/routing", tags=["routing"])
PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]
Admin = Annotated[Principal, Depends(require_roles("platform_admin", "tenant_admin"))]
PolicyName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_\-]{0,49}$")]


@router.get("/policies", response_model=list[PolicyOut])
async def list_policies(request: Request, _: Admin) -> list[PolicyOut]:
    return await _container(request).routing_admin.list_policies()


@router.post("/policies", response_model=PolicyOut, status_code=201)
async def create_policy(request: Request, body: PolicyIn, _: PlatformAdmin) -> PolicyOut:
    return await _container(request).routing_admin.create_policy(body)


@router.get("/policies/{name}", response_model=PolicyOut)
async def get_policy(request: Request, name: PolicyName, _: Admin) -> PolicyOut:
    return await _container(request).routing_admin.get_policy(name)


@router.put("/policies/{name}", response_model=PolicyOut)
async def replace_policy(request: Request, name: PolicyName, body: PolicyBody, _: PlatformAdmin) -> PolicyOut:
    return await _container(request).routing_admin.replace_policy(name, body)


@router.delete("/policies/{name}", status_code=204)
async def delete_policy(request: Request, name: PolicyName, _: PlatformAdmin) -> None:
    await _container(request).routing_admin.delete_policy(name)


@router.get("/task-policies")
async def get_task_policies(request: Request, _: Admin) -> dict[str, str]:
    """Which policy each task type uses (unlisted tasks use the agent's default policy, then `normal`)."""
    return await _container(request).routing_admin.task_policies()


@router.put("/task-policies")
async def put_task_policies(
    request: Request,
    mapping: Annotated[dict[str, Annotated[str, Body(max_length=50)]], Body()],
    principal: PlatformAdmin,
) -> dict[str, str]:
    return await _container(request).routing_admin.set_task_policies(mapping, principal)


@router.get("/task-maps")
async def get_task_maps(request: Request, _: Admin) -> dict[str, Any]:
    """The tool -> task, MIME -> task and keyword -> task maps used by task detection."""
    return _container(request).routing_admin.task_maps()


@router.put("/task-maps")
async def put_task_maps(
    request: Request, maps: Annotated[dict[str, Any], Body()], principal: PlatformAdmin
) -> dict[str, Any]:
    return await _container(request).routing_admin.set_task_maps(maps, principal)


@router.get("/experience-sharing", response_model=SharingOut)
async def get_experience_sharing(request: Request, principal: Admin) -> SharingOut:
    """Whether the caller's tenant pools its ratings with other tenants (off by default)."""
    return await _container(request).sharing.get(principal)


@router.put("/experience-sharing", response_model=SharingOut)
async def put_experience_sharing(request: Request, body: SharingIn, principal: Admin) -> SharingOut:
    """Opt the caller's tenant in to (or out of) sharing experience. Tenants that share all see the
    pooled ratings of all of them; others see only their own and the platform's priors."""
    return await _container(request).sharing.set(principal, body)


@router.get("/decisions/{message_id}")
async def get_decision(
    request: Request, message_id: Annotated[str, Path(max_length=40)], principal: AnyCaller
) -> dict[str, Any]:
    """The routing decision behind one answer of the caller's tenant (by its message id, or by
    its Responses API id)."""
    message_id = message_id_for(message_id) or message_id
    if len(message_id) > 36:
        raise InvalidRequest("message_id must be at most 36 characters", param="message_id")
    return await find_decision(_container(request), message_id, principal)


async def find_decision(container: Container, message_id: str, principal: Principal) -> dict[str, Any]:
    """The decision from the recent ones in memory, else from the stored record (tenant-checked)."""
    recent = container.recent.decision(message_id)
    if recent is not None and recent[0] == principal.tenant_id:
        return {"message_id": message_id, **recent[1]}
    async with container.sessions() as session:
        row = await session.get(Message, message_id)
    if row is None or row.tenant_id != principal.tenant_id or "decision" not in (row.metadata_ or {}):
        raise NotFound(f"no routing decision for message '{message_id}'", param="message_id")
    return {"message_id": message_id, **row.metadata_["decision"], "outcome": decision_outcome(row)}


@router.post("/explain")
async def explain(request: Request, principal: AnyCaller) -> dict[str, Any]:
    """What would be picked for this chat request, and why, without calling any model."""
    return explain_body(_container(request), principal, decode_json(await request.body()))


def explain_body(container: Container, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """The decision routing would make for a chat ``body`` (the API's and the UI's explain)."""
    agent_id = body.pop("agent_id", None)  # explain's own field: the agent to explain for
    if agent_id is not None:
        if not isinstance(agent_id, str) or not agent_id:
            raise InvalidRequest("agent_id must be a string", param="agent_id")
        metadata = body.get("metadata")
        body["metadata"] = {**(metadata if isinstance(metadata, dict) else {}), "agent_id": agent_id}
    call = parse_chat(body)
    routed = container.routing.route(container.snapshots.current, principal, call)
    return decision_dict(routed)
