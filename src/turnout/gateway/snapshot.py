"""In-memory snapshot of what the hot path reads: providers, models, aliases, agents, API keys.

The data plane never queries the database per request. The snapshot is rebuilt after control-plane
writes in this replica (``trigger``) and, for changes made by other replicas, when a cheap
change probe (row counts and latest ``updated_at`` per table) differs, every ``interval_s``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.routing.policies import DEFAULT_TASK_POLICIES, PolicyView, view_of
from turnout.routing.tasks import TaskMaps
from turnout.store.agents import Agent, ApiKey
from turnout.store.models import Model, Provider
from turnout.store.routing import AgentModelConfig, RoutingPolicy, SettingEntry
from turnout.tasks import cancel_and_wait, wait_event

TASK_POLICIES_KEY = "routing.task_policies"
TASK_MAPS_KEY = "routing.task_maps"

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    id: str
    provider_type: str
    api_base: str
    api_version: str | None
    api_key_ref: str | None
    rate_limit_rpm: int | None
    is_active: bool


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    provider_id: str
    external_id: str
    display_name: str
    model_type: str
    capabilities: frozenset[str]
    priority: int
    cost_tier: str
    ctx_length: int | None
    pricing_input: float | None  # USD per 1M tokens
    pricing_output: float | None
    usable: bool  # available at the provider, enabled by an admin, provider active


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key_id: str
    salt: str
    secret_hash: str
    agent_id: str
    tenant_id: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class AgentEntry:
    id: str
    tenant_id: str
    name: str
    capsule: dict[str, Any]
    is_active: bool
    default_policy: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    providers: dict[str, ProviderEntry] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    agents: dict[str, AgentEntry] = field(default_factory=dict)
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    agent_models: dict[str, dict[str, int | None]] = field(default_factory=dict)  # agent -> model -> override
    policies: dict[str, PolicyView] = field(default_factory=dict)
    task_policies: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TASK_POLICIES))
    task_maps: Any = None  # routing.tasks.TaskMaps once an admin changed them; None = defaults

    def resolve_model(self, name: str) -> ModelEntry | None:
        """A catalog id, or an alias (a provider's own model id when unambiguous or best-priority)."""
        entry = self.models.get(name)
        if entry is not None:
            return entry
        target = self.aliases.get(name)
        return self.models.get(target) if target is not None else None


class SnapshotStore:
    """Holds the current snapshot and keeps it fresh."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float = 2.0) -> None:
        self._sessions = sessions
        self._interval_s = interval_s
        self.current = Snapshot()
        self._probe: tuple[Any, ...] | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put_key(self, entry: KeyEntry) -> None:
        """Make a key issue or revocation effective in this replica at once (others follow on refresh)."""
        self.current = dataclasses.replace(self.current, keys={**self.current.keys, entry.key_id: entry})

    def put_agent_models(self, agent_id: str, models: dict[str, int | None]) -> None:
        """Make an agent's enabled models (with priority overrides) effective here at once."""
        self.current = dataclasses.replace(
            self.current, agent_models={**self.current.agent_models, agent_id: models}
        )

    def put(self, **changes: Any) -> None:
        """Replace whole parts of the snapshot at once (policies, task maps, ...) after a write here."""
        self.current = dataclasses.replace(self.current, **changes)

    def put_agent(self, entry: AgentEntry) -> None:
        """Make a new or changed agent visible in this replica at once."""
        self.current = dataclasses.replace(self.current, agents={**self.current.agents, entry.id: entry})

    async def refresh(self) -> None:
        """Rebuild now, so a control-plane write is visible to this replica when its response returns."""
        try:
            await self.reload()
        except Exception as exc:  # the write succeeded; the background refresh will catch up
            log.warning("snapshot_refresh_failed", error_type=type(exc).__name__)
            self.trigger()

    def trigger(self) -> None:
        """Ask for a rebuild soon (called after control-plane writes)."""
        self._dirty.set()

    async def reload(self) -> Snapshot:
        """Rebuild from the database now."""
        async with self._sessions() as session:
            self._probe = await _probe(session)
            self.current = await _build(session)
        return self.current

    async def start(self) -> None:
        """Load once, then keep fresh in the background."""
        await self.reload()
        self._task = asyncio.create_task(self._loop(), name="snapshot-refresh")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            forced = await wait_event(self._dirty, self._interval_s)
            self._dirty.clear()
            try:
                async with self._sessions() as session:
                    probe = await _probe(session)
                    if forced or probe != self._probe:
                        self.current = await _build(session)
                        self._probe = probe
            except Exception as exc:  # keep serving the last snapshot while the database is away
                log.warning("snapshot_refresh_failed", error_type=type(exc).__name__)


async def _probe(session: AsyncSession) -> tuple[Any, ...]:
    values: list[Any] = []
    stamps = (Provider.updated_at, Model.updated_at, Agent.updated_at, ApiKey.created_at)
    for stamp in (*stamps, AgentModelConfig.enabled_at, RoutingPolicy.updated_at, SettingEntry.updated_at):
        row = (await session.execute(select(func.count(), func.max(stamp)))).one()
        values.extend(row)
    revoked = await session.scalar(select(func.count()).where(ApiKey.revoked_at.is_not(None)))
    return (*values, revoked)


async def _build(session: AsyncSession) -> Snapshot:
    providers = {
        p.id: ProviderEntry(
            p.id, p.provider_type, p.api_base, p.api_version, p.api_key_ref, p.rate_limit_rpm, p.is_active
        )
        for p in (await session.scalars(select(Provider))).all()
    }
    columns = [
        getattr(Model, name)
        for name in (
            "id", "provider_id", "external_id", "display_name", "model_type", "capabilities", "priority",
            "cost_tier", "ctx_length", "pricing_input", "pricing_output", "is_available", "is_enabled",
        )
    ]  # fmt: skip
    models: dict[str, ModelEntry] = {}
    for r in await session.execute(select(*columns)):
        provider = providers.get(r.provider_id)
        models[r.id] = ModelEntry(
            r.id, r.provider_id, r.external_id, r.display_name, r.model_type, frozenset(r.capabilities or ()),
            r.priority, r.cost_tier, r.ctx_length,
            None if r.pricing_input is None else float(r.pricing_input),
            None if r.pricing_output is None else float(r.pricing_output),
            bool(r.is_available and r.is_enabled and provider is not None and provider.is_active),
        )  # fmt: skip
    agents = {
        a.id: AgentEntry(a.id, a.tenant_id, a.name, a.capsule or {}, a.is_active, a.default_policy)
        for a in (await session.scalars(select(Agent))).all()
    }
    keys = {
        k.id: KeyEntry(k.id, k.salt, k.secret_hash, k.agent_id, k.tenant_id, k.revoked_at is not None)
        for k in (await session.scalars(select(ApiKey))).all()
    }
    agent_models: dict[str, dict[str, int | None]] = {}
    enabled = select(
        AgentModelConfig.agent_id, AgentModelConfig.model_id, AgentModelConfig.priority_override
    ).where(AgentModelConfig.is_enabled.is_(True))
    for agent_id, model_id, override in await session.execute(enabled):
        agent_models.setdefault(agent_id, {})[model_id] = override
    policies = {
        p.name: view_of(p.name, p.config)
        for p in (await session.scalars(select(RoutingPolicy))).all()
        if p.is_active
    }
    settings = {s.key: s.value for s in (await session.scalars(select(SettingEntry))).all()}
    task_policies = dict(settings.get(TASK_POLICIES_KEY) or DEFAULT_TASK_POLICIES)
    maps = settings.get(TASK_MAPS_KEY)
    task_maps = TaskMaps.from_dict(maps) if maps else None
    return Snapshot(
        providers,
        models,
        _aliases(models.values()),
        agents,
        keys,
        agent_models,
        policies,
        task_policies,
        task_maps,
    )


def _aliases(models: Any) -> dict[str, str]:
    """external id -> catalog id of the usable model with the highest priority (ties: lowest id)."""
    best: dict[str, ModelEntry] = {}
    for m in models:
        if not m.usable:
            continue
        seen = best.get(m.external_id)
        if seen is None or (m.priority, seen.id) > (seen.priority, m.id):
            best[m.external_id] = m
    return {alias: m.id for alias, m in best.items()}
