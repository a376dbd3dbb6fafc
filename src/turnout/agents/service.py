"""Tenant admins' operations on agents and keys; every query is scoped to the caller's tenant.

Agents are identified by ``(tenant, id)``: two tenants may both own an agent "bot", and a 409 only
ever concerns the caller's own tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.agents.schemas import AgentCreate, AgentList, AgentOut, AgentUpdate, KeyIssued, KeyList, KeyOut
from turnout.auth.api_keys import issue_key
from turnout.auth.principal import Principal
from turnout.domain.capsule import check_allowed_models
from turnout.domain.policies import stored_cache_rule
from turnout.domain.snapshot import AgentEntry, KeyEntry, SnapshotStore
from turnout.errors import Conflict, NotFound
from turnout.store.agents import Agent, ApiKey
from turnout.store.models import utcnow


class AgentService:
    """Agents and API keys; writes take effect in this replica's snapshot at once."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], snapshots: SnapshotStore) -> None:
        self._sessions = sessions
        self._snapshots = snapshots

    async def create(self, body: AgentCreate, principal: Principal) -> AgentOut:
        """Create an agent in the caller's tenant (409 if the tenant already has, or had, that id)."""
        check_allowed_models(body.capsule)
        if body.default_policy is not None:
            self._snapshots.current.check_policy(body.default_policy, "default_policy")
        agent = Agent(
            id=body.id or f"agt_{uuid.uuid4().hex[:20]}",
            tenant_id=principal.tenant_id,
            name=body.name,
            capsule=body.capsule,
            default_policy=body.default_policy,
            response_cache=body.response_cache.model_dump() if body.response_cache is not None else None,
            is_active=True,
            created_by=principal.subject,
        )
        try:
            async with self._sessions.begin() as session:
                existing = await session.get(Agent, (agent.tenant_id, agent.id))
                if existing is not None:
                    raise _duplicate(agent.id, deleted=existing.deleted_at is not None)
                session.add(agent)
        except IntegrityError:  # created concurrently by another request of this tenant
            raise _duplicate(agent.id, deleted=False) from None
        self._snapshots.put_agent(_agent_entry(agent))
        return _agent_out(agent)

    async def list(self, principal: Principal) -> AgentList:
        """The caller's tenant's agents."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Agent)
                    .where(Agent.tenant_id == principal.tenant_id, Agent.deleted_at.is_(None))
                    .order_by(Agent.created_at)
                )
            ).all()
        return AgentList(items=[_agent_out(a) for a in rows], total=len(rows))

    async def get(self, agent_id: str, principal: Principal) -> AgentOut:
        """One agent of the caller's tenant; another tenant's agent is 404, as if absent."""
        async with self._sessions() as session:
            return _agent_out(await self.load(session, agent_id, principal))

    async def update(self, agent_id: str, body: AgentUpdate, principal: Principal) -> AgentOut:
        """Rename, change the capsule (``allowed_models``, per role), the default policy, the
        response cache setting (null clears either), or ``is_active``: a deactivated agent is
        refused everywhere (its keys, a JWT naming it) until it is activated again; its keys stay
        valid for that moment."""
        changes = body.model_dump(exclude_unset=True)
        if changes.get("capsule") is not None:
            check_allowed_models(changes["capsule"])
        if changes.get("default_policy") is not None:
            self._snapshots.current.check_policy(changes["default_policy"], "default_policy")
        async with self._sessions.begin() as session:
            agent = await self.load(session, agent_id, principal)
            for field, value in changes.items():
                if value is not None or field in ("default_policy", "response_cache"):
                    setattr(agent, field, value)
        self._snapshots.put_agent(_agent_entry(agent))
        return _agent_out(agent)

    async def issue_key(self, agent_id: str, name: str | None, principal: Principal) -> KeyIssued:
        """A new key for the agent, returned once in clear; none for a deactivated agent (409)."""
        new = issue_key()
        async with self._sessions.begin() as session:
            agent = await self.load(session, agent_id, principal)
            if not agent.is_active:
                raise Conflict(
                    f"agent '{agent_id}' is deactivated: activate it before issuing keys",
                    param="agent_id",
                    code="agent_inactive",
                )
            row = ApiKey(
                id=new.key_id,
                agent_id=agent.id,
                tenant_id=agent.tenant_id,
                name=name,
                salt=new.salt,
                secret_hash=new.secret_hash,
                hint=new.hint,
                created_by=principal.subject,
                created_at=utcnow(),
            )
            session.add(row)
        self._snapshots.put_key(_key_entry(row))
        return KeyIssued(**_key_out(row).model_dump(), key=new.value)

    async def list_keys(self, agent_id: str, principal: Principal) -> KeyList:
        """The agent's keys (hints only)."""
        async with self._sessions() as session:
            await self.load(session, agent_id, principal)
            rows = (
                await session.scalars(
                    select(ApiKey)
                    .where(ApiKey.tenant_id == principal.tenant_id, ApiKey.agent_id == agent_id)
                    .order_by(ApiKey.created_at)
                )
            ).all()
        return KeyList(items=[_key_out(k) for k in rows], total=len(rows))

    async def revoke_key(self, agent_id: str, key_id: str, principal: Principal) -> KeyOut:
        """Revoke a key; it stops working at once in this replica, within seconds elsewhere."""
        async with self._sessions.begin() as session:
            await self.load(session, agent_id, principal)
            key = await session.get(ApiKey, key_id)
            if key is None or (key.tenant_id, key.agent_id) != (principal.tenant_id, agent_id):
                raise NotFound(f"key '{key_id}' not found", param="key_id")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
        self._snapshots.put_key(_key_entry(key))
        return _key_out(key)

    async def delete(self, agent_id: str, principal: Principal) -> None:
        """Delete an agent: soft. The row stays, marked deleted and inactive, and its id stays taken
        in the tenant: messages, ratings, the audit log and learned experience name agents by id,
        and a new agent under an old id would inherit (and blur) the old one's history. Its keys
        are revoked (kept, as revoked, for the record); its model settings stay but serve nothing.
        It disappears from every listing and lookup at once here, within seconds elsewhere."""
        now = utcnow()
        async with self._sessions.begin() as session:
            agent = await self.load(session, agent_id, principal)
            agent.deleted_at, agent.is_active = now, False
            revoked = (
                await session.scalars(
                    update(ApiKey)
                    .where(
                        ApiKey.tenant_id == principal.tenant_id,
                        ApiKey.agent_id == agent_id,
                        ApiKey.revoked_at.is_(None),
                    )
                    .values(revoked_at=now)
                    .returning(ApiKey)
                )
            ).all()
        self._snapshots.drop_agent(principal.tenant_id, agent_id, [_key_entry(k) for k in revoked])

    @staticmethod
    async def load(session: AsyncSession, agent_id: str, principal: Principal) -> Agent:
        """The agent of the caller's tenant by that id, else 404 (deleted agents included)."""
        agent = await session.get(Agent, (principal.tenant_id, agent_id))
        if agent is None or agent.deleted_at is not None:
            raise NotFound(f"agent '{agent_id}' not found", param="agent_id")
        return agent


def _duplicate(agent_id: str, *, deleted: bool) -> Conflict:
    """The 409 of an id the caller's tenant already uses (or used, for a deleted agent)."""
    if deleted:
        message = f"agent '{agent_id}' was deleted; ids of deleted agents are not reused"
    else:
        message = f"agent '{agent_id}' already exists"
    return Conflict(message, param="id", code="duplicate_id")


def _agent_entry(agent: Agent) -> AgentEntry:
    return AgentEntry(
        agent.id,
        agent.tenant_id,
        agent.name,
        agent.capsule or {},
        agent.is_active,
        agent.default_policy,
        stored_cache_rule(agent.response_cache),
    )


def _key_entry(key: ApiKey) -> KeyEntry:
    return KeyEntry(
        key.id, key.salt, key.secret_hash, key.agent_id, key.tenant_id, key.revoked_at is not None
    )


def _agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        tenant_id=agent.tenant_id,
        name=agent.name,
        capsule=agent.capsule or {},
        default_policy=agent.default_policy,
        response_cache=agent.response_cache,
        is_active=agent.is_active,
        created_by=agent.created_by,
        created_at=agent.created_at,
    )


def _key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        agent_id=key.agent_id,
        name=key.name,
        hint=key.hint,
        revoked_at=key.revoked_at,
        created_at=key.created_at,
    )
