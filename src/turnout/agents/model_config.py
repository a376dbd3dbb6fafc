"""Per-agent model enablement (SRS FR-03): enable, disable, priority overrides, all audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.agents.service import AgentService
from turnout.auth.principal import Principal
from turnout.catalog.model_service import filter_clauses
from turnout.catalog.schemas import Capability, CostTier, ModelFilter, Priority
from turnout.domain.snapshot import SnapshotStore
from turnout.errors import InvalidRequest, NotFound
from turnout.store.agents import Agent
from turnout.store.models import Model, UtcDateTime, utcnow
from turnout.store.routing import AgentModelConfig, AuditEntry

CHUNK = 1000
DETAIL_LIMIT = 100  # up to this many named models (no filter) are changed and audited one by one
AUDIT_IDS = 100  # named ids kept in a summary audit row
READ_SLICE = 2000  # rows read per await when loading an agent's enabled models
MAX_PAGE = 1000  # models listed per page at most


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
    total: int  # models configured for the agent (enabled or not), over all pages
    total_enabled: int
    page: int
    per_page: int


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

    async def list_models(
        self, agent_id: str, principal: Principal, page: int = 1, per_page: int = MAX_PAGE
    ) -> AgentModels:
        """One page of the agent's configured models, in id order, with the counts over all of
        them. Paged: an agent may have tens of thousands, and building them all at once would hold
        the event loop (and every other tenant's requests) for half a second."""
        mine = _of_agent(principal.tenant_id, agent_id)
        async with self._sessions() as session:
            await AgentService.load(session, agent_id, principal)
            enabled = func.coalesce(func.sum(case((AgentModelConfig.is_enabled, 1), else_=0)), 0)
            total, total_enabled = (await session.execute(select(func.count(), enabled).where(mine))).one()
            rows = await session.execute(
                select(
                    AgentModelConfig.model_id,
                    Model.display_name,
                    AgentModelConfig.is_enabled,
                    AgentModelConfig.priority_override,
                    AgentModelConfig.enabled_by,
                    AgentModelConfig.enabled_at,
                )
                .join(Model, Model.id == AgentModelConfig.model_id)
                .where(mine)
                .order_by(AgentModelConfig.model_id)
                .offset((page - 1) * per_page)
                .limit(per_page)
            )
            views = [AgentModelView(**row._mapping) for row in rows]
        return AgentModels(
            agent_id=agent_id,
            models=views,
            total=total,
            total_enabled=total_enabled,
            page=page,
            per_page=per_page,
        )

    async def set_enabled(
        self, agent_id: str, selection: ModelSelection, enabled: bool, principal: Principal
    ) -> SelectionResult:
        """Enable (or disable) the selected models for the agent; unknown ids are a 404.

        A few named models are changed one by one, each audited with its before and after. A
        ``bulk_filter`` (or more than ``DETAIL_LIMIT`` ids) is changed by set-based statements, the
        database doing the work (40,000 rows built on the event loop once stalled every tenant's
        requests for ~1 s), and audited as one summary row."""
        async with self._sessions.begin() as session:
            agent = await AgentService.load(session, agent_id, principal)
            named = await _named(session, selection)
            if selection.bulk_filter is None and len(named) <= DETAIL_LIMIT:
                changed = await _change_each(session, agent, named, selection, enabled, principal)
            else:
                changed = await _change_all(session, agent, named, selection, enabled, principal)
        await self.publish(agent.tenant_id, agent_id)
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
            config = (await _configs(session, agent, [model_id])).get(model_id)
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
            session.add(AuditEntry(**_audit(agent, principal, "update", model_id, before, _state(config))))
            name = await session.scalar(select(Model.display_name).where(Model.id == model_id))
        await self.publish(agent.tenant_id, agent_id)
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

    async def publish(self, tenant_id: str, agent_id: str) -> None:
        """Put the agent's enabled models into this replica's snapshot at once (read in slices, so
        an agent with tens of thousands of models does not hold the event loop)."""
        models: dict[str, int | None] = {}
        query = select(AgentModelConfig.model_id, AgentModelConfig.priority_override).where(
            _of_agent(tenant_id, agent_id), AgentModelConfig.is_enabled.is_(True)
        )
        async with self._sessions() as session:
            result = await session.stream(query.execution_options(yield_per=READ_SLICE))
            async for rows in result.partitions():
                models.update(rows)
        self._snapshots.put_agent_models(tenant_id, agent_id, models)


def _of_agent(tenant_id: str, agent_id: str) -> ColumnElement[bool]:
    return and_(AgentModelConfig.tenant_id == tenant_id, AgentModelConfig.agent_id == agent_id)


async def _named(session: AsyncSession, selection: ModelSelection) -> list[str]:
    """The selection's named model ids, each known to the catalog (else 404); checks that the
    selection names something."""
    if not selection.model_ids and selection.bulk_filter is None:
        raise InvalidRequest("give model_ids and/or bulk_filter", param="model_ids")
    flt = selection.bulk_filter
    if flt is not None and flt.provider is None and flt.cost_tier is None and not flt.capability:
        raise InvalidRequest("bulk_filter needs at least one criterion", param="bulk_filter")
    ids = list(dict.fromkeys(selection.model_ids))
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found.update((await session.scalars(select(Model.id).where(Model.id.in_(chunk)))).all())
    missing = [m for m in ids if m not in found]
    if missing:
        raise NotFound(
            f"unknown model(s): {', '.join(missing[:5])}", param="model_ids", code="model_not_found"
        )
    return ids


async def _change_each(
    session: AsyncSession,
    agent: Agent,
    model_ids: list[str],
    selection: ModelSelection,
    enabled: bool,
    principal: Principal,
) -> list[str]:
    """Change a few named models one by one, each audited with its before and after."""
    existing = await _configs(session, agent, model_ids)
    now = utcnow()
    override = selection.priority_override if enabled else None
    changed: list[str] = []
    for model_id in model_ids:
        config = existing.get(model_id)
        before = _state(config)
        if config is None:
            if not enabled:
                continue
            config = AgentModelConfig(
                id=str(uuid.uuid4()), agent_id=agent.id, model_id=model_id, tenant_id=agent.tenant_id
            )
            session.add(config)
        elif config.is_enabled == enabled and (override is None or config.priority_override == override):
            continue
        config.is_enabled = enabled
        if override is not None:
            config.priority_override = override
        config.enabled_by, config.enabled_at = principal.subject, now
        changed.append(model_id)
        action = "enable" if enabled else "disable"
        session.add(AuditEntry(**_audit(agent, principal, action, model_id, before, _state(config))))
    return changed


async def _change_all(
    session: AsyncSession,
    agent: Agent,
    named: list[str],
    selection: ModelSelection,
    enabled: bool,
    principal: Principal,
) -> list[str]:
    """Change every selected model with set-based statements (update the agent's existing rows,
    insert the missing ones from the catalog), audited as one summary row."""
    selected = _selected(named, selection.bulk_filter)
    mine = _of_agent(agent.tenant_id, agent.id)
    now = utcnow()
    override = selection.priority_override if enabled else None
    stale: ColumnElement[bool] = AgentModelConfig.is_enabled.is_(not enabled)
    if override is not None:  # enabled already, but with another override: changed too
        stale = or_(stale, AgentModelConfig.priority_override.is_(None))
        stale = or_(stale, AgentModelConfig.priority_override != override)
    values: dict[str, Any] = {"is_enabled": enabled, "enabled_by": principal.subject, "enabled_at": now}
    if override is not None:
        values["priority_override"] = override
    updated = await session.scalars(
        update(AgentModelConfig)
        .where(mine, AgentModelConfig.model_id.in_(select(Model.id).where(selected)), stale)
        .values(values)
        .returning(AgentModelConfig.model_id)
        .execution_options(synchronize_session=False)
    )
    changed = list(updated.all())
    if enabled:
        taken = select(AgentModelConfig.id).where(mine, AgentModelConfig.model_id == Model.id)
        columns = {
            "id": _random_id(session),
            "agent_id": literal(agent.id),
            "model_id": Model.id,
            "tenant_id": literal(agent.tenant_id),
            "is_enabled": true(),
            "priority_override": literal(override, Integer()),
            "enabled_by": literal(principal.subject),
            "enabled_at": literal(now, UtcDateTime()),
        }
        source = select(*columns.values()).where(selected, ~taken.exists())
        inserted = await session.scalars(
            insert(AgentModelConfig).from_select(list(columns), source).returning(AgentModelConfig.model_id)
        )
        changed += inserted.all()
    changed.sort()
    if changed:
        flt = selection.bulk_filter
        after = {
            "is_enabled": enabled,
            "count": len(changed),
            "bulk_filter": flt.model_dump(exclude_defaults=True) if flt is not None else None,
            "model_ids": named[:AUDIT_IDS],
            "priority_override": override,
        }
        action = "bulk_enable" if enabled else "bulk_disable"
        session.add(AuditEntry(**_audit(agent, principal, action, "*", {}, after)))
    return changed


def _selected(named: list[str], flt: BulkFilter | None) -> ColumnElement[bool]:
    """Catalog rows of the selection: the named ids and/or the filter's matches."""
    parts: list[ColumnElement[bool]] = []
    if named:
        parts.append(Model.id.in_(named))
    if flt is not None:
        criteria = ModelFilter(provider=flt.provider, cost_tier=flt.cost_tier, capability=flt.capability)
        parts.append(and_(*filter_clauses(criteria)))
    return or_(*parts)


def _random_id(session: AsyncSession) -> ColumnElement[str]:
    """A fresh random row id computed by the database, one per inserted row."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.gen_random_uuid(), String)
    return func.lower(func.hex(func.randomblob(16)))


async def _configs(
    session: AsyncSession, agent: Agent, model_ids: Iterable[str]
) -> dict[str, AgentModelConfig]:
    found: dict[str, AgentModelConfig] = {}
    ids = list(model_ids)
    for start in range(0, len(ids), CHUNK):
        rows = await session.scalars(
            select(AgentModelConfig).where(
                _of_agent(agent.tenant_id, agent.id),
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
    agent: Agent,
    principal: Principal,
    action: str,
    model_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": agent.tenant_id,
        "actor": principal.subject,
        "action": action,
        "entity_type": "agent_model",
        "entity_id": f"{agent.id}:{model_id}",
        "before": before,
        "after": after,
        "created_at": utcnow(),
    }
