"""Tenant admins' operations on agents and keys; every query is scoped to the caller's tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.agents.schemas import AgentCreate, AgentList, AgentOut, AgentUpdate, KeyIssued, KeyList, KeyOut
from turnout.auth.api_keys import issue_key
from turnout.auth.principal import Principal
from turnout.errors import Conflict, NotFound
from turnout.gateway.snapshot import AgentEntry, KeyEntry, SnapshotStore
from turnout.store.agents import Agent, ApiKey
from turnout.store.models import utcnow


class AgentService:
    """Agents and API keys; writes take effect in this replica's snapshot at once."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], snapshots: SnapshotStore) -> None:
        self._sessions = sessions
        self._snapshots = snapshots

    async def create(self, body: AgentCreate, principal: Principal) -> AgentOut:
        """Create an agent in the caller's tenant."""
        agent = Agent(
            id=body.id or f"agt_{uuid.uuid4().hex[:20]}",
            tenant_id=principal.tenant_id,
            name=body.name,
            capsule=body.capsule,
            default_policy=body.default_policy,
            is_active=True,
            created_by=principal.subject,
        )
        async with self._sessions.begin() as session:
            if await session.get(Agent, agent.id) is not None:
                raise Conflict(f"agent '{agent.id}' already exists", param="id", code="duplicate_id")
            session.add(agent)
        self._snapshots.put_agent(_agent_entry(agent))
        return _agent_out(agent)

    async def list(self, principal: Principal) -> AgentList:
        """The caller's tenant's agents."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Agent).where(Agent.tenant_id == principal.tenant_id).order_by(Agent.created_at)
                )
            ).all()
        return AgentList(items=[_agent_out(a) for a in rows], total=len(rows))

    async def get(self, agent_id: str, principal: Principal) -> AgentOut:
        """One agent of the caller's tenant; another tenant's agent is 404, as if absent."""
        async with self._sessions() as session:
            return _agent_out(await self.load(session, agent_id, principal))

    async def update(self, agent_id: str, body: AgentUpdate, principal: Principal) -> AgentOut:
        """Rename, change the capsule (``allowed_models``, per role) or the default policy."""
        changes = body.model_dump(exclude_unset=True)
        async with self._sessions.begin() as session:
            agent = await self.load(session, agent_id, principal)
            for field, value in changes.items():
                if value is not None or field == "default_policy":
                    setattr(agent, field, value)
        self._snapshots.put_agent(_agent_entry(agent))
        return _agent_out(agent)

    async def issue_key(self, agent_id: str, name: str | None, principal: Principal) -> KeyIssued:
        """A new key for the agent, returned once in clear."""
        new = issue_key()
        async with self._sessions.begin() as session:
            agent = await self.load(session, agent_id, principal)
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
                    select(ApiKey).where(ApiKey.agent_id == agent_id).order_by(ApiKey.created_at)
                )
            ).all()
        return KeyList(items=[_key_out(k) for k in rows], total=len(rows))

    async def revoke_key(self, agent_id: str, key_id: str, principal: Principal) -> KeyOut:
        """Revoke a key; it stops working at once in this replica, within seconds elsewhere."""
        async with self._sessions.begin() as session:
            await self.load(session, agent_id, principal)
            key = await session.get(ApiKey, key_id)
            if key is None or key.agent_id != agent_id:
                raise NotFound(f"key '{key_id}' not found", param="key_id")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
        self._snapshots.put_key(_key_entry(key))
        return _key_out(key)

    @staticmethod
    async def load(session: AsyncSession, agent_id: str, principal: Principal) -> Agent:
        """The agent if it belongs to the caller's tenant, else 404."""
        agent = await session.get(Agent, agent_id)
        if agent is None or agent.tenant_id != principal.tenant_id:
            raise NotFound(f"agent '{agent_id}' not found", param="agent_id")
        return agent


def _agent_entry(agent: Agent) -> AgentEntry:
    return AgentEntry(
        agent.id, agent.tenant_id, agent.name, agent.capsule or {}, agent.is_active, agent.default_policy
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
