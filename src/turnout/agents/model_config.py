"""Per-agent model enablement (SRS FR-03): enable, disable, priority overrides, all audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.agents.service import AgentService
from turnout.auth.principal import Principal
from turnout.catalog.model_service import filter_clauses
from turnout.catalog.schemas import Capability, CostTier, ModelFilter, Priority
from turnout.errors import InvalidRequest, NotFound
from turnout.gateway.snapshot import SnapshotStore
from turnout.store.models import Model, utcnow
from turnout.store.routing import AgentModelConfig, AuditEntry

CHUNK = 1000


class BulkFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(default=None, max_length=50)
    cost_tier: CostTier | None = None
    capability: list[Capability] = Field(default_factory=list)


class ModelSelection(BaseModel):
    """Models named by id and/or matched by a filter."""

    model_config = ConfigDict(extra="forbid")

    model_ids: list[str] = Field(default_factory=list, max_length=10_000)
    bulk_filter: BulkFilter | None = None
    priority_override: Priority | None = None


class ConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_enabled: bool | None = None
    priority_override: Priority | None = None


class AgentModelView(BaseModel):
    model_id: str
    display_name: str
    is_enabled: bool
    priority_override: int | None
    enabled_by: str | None
    enabled_at: Any


class AgentModels(BaseModel):
    agent_id: str
    models: list[AgentModelView]
    total_enabled: int


class SelectionResult(BaseModel):
    enabled_count: int = 0
    disabled_count: int = 0
    models_enabled: list[str] = Field(default_factory=list)
    models_disabled: list[str] = Field(default_factory=list)


class AgentModelService:
    """Tenant admins choose which catalog models each of their agents may use."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], snapshots: SnapshotStore) -> None:
        self._sessions = sessions
        self._snapshots = snapshots

    async def list_models(self, agent_id: str, principal: Principal) -> AgentModels:
        async with self._sessions() as session:
            await AgentService.load(session, agent_id, principal)
            rows = (
                await session.execute(
                    select(AgentModelConfig, Model.display_name)
                    .join(Model, Model.id == AgentModelConfig.model_id)
                    .where(AgentModelConfig.agent_id == agent_id)
                    .order_by(AgentModelConfig.model_id)
                )
            ).all()
        views = [
            AgentModelView(
                model_id=c.model_id,
                display_name=name,
                is_enabled=c.is_enabled,
                priority_override=c.priority_override,
                enabled_by=c.enabled_by,
                enabled_at=c.enabled_at,
            )
            for c, name in rows
        ]
        return AgentModels(agent_id=agent_id, models=views, total_enabled=sum(v.is_enabled for v in views))

    async def set_enabled(
        self, agent_id: str, selection: ModelSelection, enabled: bool, principal: Principal
    ) -> SelectionResult:
        """Enable (or disable) the selected models for the agent; unknown ids are a 404."""
        async with self._sessions.begin() as session:
            agent = await AgentService.load(session, agent_id, principal)
            model_ids = await _resolve(session, selection)
            existing = await _configs(session, agent_id, model_ids)
            now = utcnow()
            changed: list[str] = []
            audits: list[dict[str, Any]] = []
            inserts: list[dict[str, Any]] = []
            for model_id in model_ids:
                config = existing.get(model_id)
                before = _state(config)
                override = selection.priority_override if enabled else None
                if config is None:
                    if not enabled:
                        continue
                    inserts.append(
                        {
                            "id": str(uuid.uuid4()),
                            "agent_id": agent_id,
                            "model_id": model_id,
                            "tenant_id": agent.tenant_id,
                            "is_enabled": True,
                            "priority_override": override,
                            "enabled_by": principal.subject,
                            "enabled_at": now,
                        }
                    )
                    after = {"is_enabled": True, "priority_override": override}
                else:
                    if config.is_enabled == enabled and (
                        override is None or config.priority_override == override
                    ):
                        continue
                    config.is_enabled = enabled
                    if override is not None:
                        config.priority_override = override
                    config.enabled_by, config.enabled_at = principal.subject, now
                    after = _state(config)
                changed.append(model_id)
                audits.append(
                    _audit(
                        agent.tenant_id,
                        principal,
                        "enable" if enabled else "disable",
                        agent_id,
                        model_id,
                        before,
                        after,
                    )
                )
            for start in range(0, len(inserts), CHUNK):
                await session.execute(insert(AgentModelConfig), inserts[start : start + CHUNK])
            for start in range(0, len(audits), CHUNK):
                await session.execute(insert(AuditEntry), audits[start : start + CHUNK])
        await self.publish(agent_id)
        if enabled:
            return SelectionResult(enabled_count=len(changed), models_enabled=changed)
        return SelectionResult(disabled_count=len(changed), models_disabled=changed)

    async def update(
        self, agent_id: str, model_id: str, body: ConfigUpdate, principal: Principal
    ) -> AgentModelView:
        """Change one model's enablement or priority override."""
        changes = body.model_dump(exclude_unset=True)
        async with self._sessions.begin() as session:
            agent = await AgentService.load(session, agent_id, principal)
            config = (await _configs(session, agent_id, [model_id])).get(model_id)
            if config is None:
                raise NotFound(
                    f"model '{model_id}' is not configured for agent '{agent_id}'", param="model_id"
                )
            before = _state(config)
            if changes.get("is_enabled") is not None:
                config.is_enabled = changes["is_enabled"]
            if "priority_override" in changes:
                config.priority_override = changes["priority_override"]
            config.enabled_by, config.enabled_at = principal.subject, utcnow()
            session.add(
                AuditEntry(
                    **_audit(agent.tenant_id, principal, "update", agent_id, model_id, before, _state(config))
                )
            )
            name = await session.scalar(select(Model.display_name).where(Model.id == model_id))
        await self.publish(agent_id)
        return AgentModelView(
            model_id=model_id,
            display_name=name or model_id,
            is_enabled=config.is_enabled,
            priority_override=config.priority_override,
            enabled_by=config.enabled_by,
            enabled_at=config.enabled_at,
        )

    async def audit(self, agent_id: str, principal: Principal, limit: int = 200) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            await AgentService.load(session, agent_id, principal)
            rows = (
                await session.scalars(
                    select(AuditEntry)
                    .where(
                        AuditEntry.tenant_id == principal.tenant_id,
                        AuditEntry.entity_id.startswith(f"{agent_id}:"),
                    )
                    .order_by(AuditEntry.created_at.desc())
                    .limit(limit)
                )
            ).all()
        return [
            {
                "actor": a.actor,
                "action": a.action,
                "entity": a.entity_id.split(":", 1)[1],
                "before": a.before,
                "after": a.after,
                "at": a.created_at,
            }
            for a in rows
        ]

    async def publish(self, agent_id: str) -> None:
        """Put the agent's enabled models into this replica's snapshot at once."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(AgentModelConfig.model_id, AgentModelConfig.priority_override).where(
                    AgentModelConfig.agent_id == agent_id, AgentModelConfig.is_enabled.is_(True)
                )
            )
            self._snapshots.put_agent_models(agent_id, {m: p for m, p in rows})


async def _resolve(session: AsyncSession, selection: ModelSelection) -> list[str]:
    ids = list(dict.fromkeys(selection.model_ids))
    if ids:
        found = set((await session.scalars(select(Model.id).where(Model.id.in_(ids)))).all())
        missing = [m for m in ids if m not in found]
        if missing:
            raise NotFound(
                f"unknown model(s): {', '.join(missing[:5])}", param="model_ids", code="model_not_found"
            )
    if selection.bulk_filter is not None:
        flt = selection.bulk_filter
        if flt.provider is None and flt.cost_tier is None and not flt.capability:
            raise InvalidRequest("bulk_filter needs at least one criterion", param="bulk_filter")
        clauses = filter_clauses(
            ModelFilter(provider=flt.provider, cost_tier=flt.cost_tier, capability=flt.capability)
        )
        ids += [
            m
            for m in (await session.scalars(select(Model.id).where(*clauses).order_by(Model.id))).all()
            if m not in ids
        ]
    if not ids and not selection.model_ids and selection.bulk_filter is None:
        raise InvalidRequest("give model_ids and/or bulk_filter", param="model_ids")
    return ids


async def _configs(
    session: AsyncSession, agent_id: str, model_ids: Iterable[str]
) -> dict[str, AgentModelConfig]:
    found: dict[str, AgentModelConfig] = {}
    ids = list(model_ids)
    for start in range(0, len(ids), CHUNK):
        rows = await session.scalars(
            select(AgentModelConfig).where(
                AgentModelConfig.agent_id == agent_id,
                AgentModelConfig.model_id.in_(ids[start : start + CHUNK]),
            )
        )
        found.update({c.model_id: c for c in rows})
    return found


def _state(config: AgentModelConfig | None) -> dict[str, Any]:
    if config is None:
        return {}
    return {"is_enabled": config.is_enabled, "priority_override": config.priority_override}


def _audit(
    tenant_id: str,
    principal: Principal,
    action: str,
    agent_id: str,
    model_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "actor": principal.subject,
        "action": action,
        "entity_type": "agent_model",
        "entity_id": f"{agent_id}:{model_id}",
        "before": before,
        "after": after,
        "created_at": utcnow(),
    }
