"""In-memory snapshot of what the hot path reads: providers, models, aliases, agents, API keys.

Agents (and their enabled models) are keyed by ``(tenant_id, agent_id)``: agent ids are unique
within a tenant only. Deleted agents are left out, so nothing finds them.

The data plane never queries the database per request. The snapshot is rebuilt after control-plane
writes in this replica (``trigger``). Every such write is published on the change bus
(``turnout.cluster``); other replicas apply a key revocation at once and rebuild (``on_event``).
As a safety net for lost events, a cheap change probe (row counts and latest ``updated_at`` per
table) runs every ``interval_s`` and rebuilds when it differs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVarTuple

import structlog
from sqlalchemy import Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.cluster.bus import RESYNC_TYPE, Event
from turnout.domain.budgets import BudgetView, LimitView
from turnout.domain.groups import GroupEntry, load_groups, snapshot_parts
from turnout.domain.policies import (
    DEFAULT_TASK_POLICIES,
    CacheRule,
    PolicyView,
    stored_cache_rule,
    view_of,
)
from turnout.domain.task_maps import TaskMaps
from turnout.errors import Forbidden, InvalidRequest, NotFound
from turnout.store.agents import Agent, ApiKey
from turnout.store.groups import DeploymentGroup
from turnout.store.models import Model, Provider
from turnout.store.routing import AgentModelConfig, RoutingPolicy, SettingEntry
from turnout.store.spend import Budget, RateLimit
from turnout.tasks import cancel_and_wait, wait_event

TASK_POLICIES_KEY = "routing.task_policies"
TASK_MAPS_KEY = "routing.task_maps"
SHARING_KEY_PREFIX = "experience.sharing:"  # + tenant id -> {"shared": bool}: pool its ratings
AgentKey = tuple[str, str]  # (tenant_id, agent_id)
_Ts = TypeVarTuple("_Ts")
BUILD_SLICE = 500  # rows turned into entries between two awaits while a snapshot is built

SNAPSHOT_EVENT = "snapshot"  # {"type": "snapshot", "revoked": [key ids]}: rebuild, refuse these now

log = structlog.get_logger(__name__)


def _nothing(event: Event) -> None:
    pass


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
    alias: str | None = None  # an admin-chosen name clients may use instead of the id
    pricing_cache_read: float | None = None  # USD per 1M cached-prompt tokens; None: pricing_input
    pricing_cache_write: float | None = None  # USD per 1M tokens written to the prompt cache
    created: int = 0  # Unix seconds when the catalog first had it (the model listings' ``created``)

    @property
    def public_name(self) -> str:
        """The name clients see in listings and answers: the alias when set, else the catalog id."""
        return self.alias or self.id


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
    response_cache: CacheRule | None = None  # None: the policy's cache setting applies


@dataclass(frozen=True, slots=True)
class Snapshot:
    providers: dict[str, ProviderEntry] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    agents: dict[AgentKey, AgentEntry] = field(default_factory=dict)
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    agent_models: dict[AgentKey, dict[str, int | None]] = field(default_factory=dict)  # -> model -> override
    policies: dict[str, PolicyView] = field(default_factory=dict)
    task_policies: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TASK_POLICIES))
    task_maps: Any = None  # domain.task_maps.TaskMaps once an admin changed them; None = defaults
    shared_experience: frozenset[str] = frozenset()  # tenants that opted in to pooling their ratings
    budgets: dict[tuple[str, str], tuple[BudgetView, ...]] = field(default_factory=dict)  # (scope, id) ->
    limits: dict[tuple[str, str, str], LimitView] = field(default_factory=dict)  # (tenant, scope, id) ->
    groups: dict[str, GroupEntry] = field(default_factory=dict)  # deployment groups by name
    group_members: frozenset[str] = frozenset()  # catalog ids in any group: failover tracks their health

    def resolve_model(self, name: str) -> ModelEntry | None:
        """A catalog id, or an alias: an admin-set one first, else a provider's own model id (the
        best-priority usable model with that id); see :func:`_aliases`."""
        entry = self.models.get(name)
        if entry is not None:
            return entry
        target = self.aliases.get(name)
        return self.models.get(target) if target is not None else None

    def check_policy(self, name: str, param: str) -> None:
        """400 naming ``param`` unless ``name`` is a routing policy: a built-in one or an active one an
        admin added (a name routing would not find was stored and then ignored: calls routed under
        the default)."""
        if name not in self.policies and name not in DEFAULT_TASK_POLICIES.values():
            known = ", ".join(sorted({*self.policies, *DEFAULT_TASK_POLICIES.values()}))
            raise InvalidRequest(f"no routing policy '{name}' (known: {known})", param=param)

    def acting_agent(self, tenant_id: str, agent_id: str, param: str | None = None) -> AgentEntry:
        """The tenant's agent a caller acts for: 404 without one by that id (deleted agents are
        absent), 403 while it is deactivated."""
        agent = self.agents.get((tenant_id, agent_id))
        if agent is None:
            raise NotFound(f"agent '{agent_id}' not found", param=param)
        if not agent.is_active:
            raise Forbidden(f"agent '{agent_id}' is deactivated", param=param, code="agent_inactive")
        return agent


class SnapshotStore:
    """Holds the current snapshot and keeps it fresh.

    A write made in this replica (a key issued or revoked, an agent or its models changed) takes
    effect at once through a ``put_*`` change. A rebuild reads the database for a while; a change
    made meanwhile may be missing from what it read, so every change made after a rebuild began is
    applied again to the rebuilt snapshot before it is installed. A revocation therefore holds
    from the moment its ``DELETE`` answers, whatever rebuild is in flight."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval_s: float = 2.0,
        publish: Callable[[Event], None] = _nothing,
    ) -> None:
        self._sessions = sessions
        self._publish = publish
        self._interval_s = interval_s
        self.current = Snapshot()
        self._probe: tuple[Any, ...] | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._version = 0  # counts local changes
        self._rebuilding = 0  # rebuilds in flight
        self._changes: list[tuple[int, Callable[[Snapshot], Snapshot]]] = []  # kept while one is

    def _change(self, change: Callable[[Snapshot], Snapshot]) -> None:
        """Apply a local change now, and remember it for the rebuilds in flight."""
        self._version += 1
        self.current = change(self.current)
        if self._rebuilding:
            self._changes.append((self._version, change))

    def _announce(self, revoked: Sequence[KeyEntry] = ()) -> None:
        """Tell the other replicas to rebuild, and to refuse ``revoked`` keys before they do. Only
        key ids travel, not their hashes; a new key reaches them through the rebuild."""
        self._publish({"type": SNAPSHOT_EVENT, "revoked": [entry.key_id for entry in revoked]})

    def on_event(self, event: Event) -> None:
        """Another replica changed something (or the bus reconnected and may have missed some)."""
        kind = event.get("type")
        if kind == SNAPSHOT_EVENT:
            revoked = [str(key_id) for key_id in event.get("revoked") or ()]
            if revoked:
                self._change(lambda snap: _revoke(snap, revoked))
            self._dirty.set()
        elif kind == RESYNC_TYPE:
            self._dirty.set()

    def put_key(self, entry: KeyEntry) -> None:
        """Make a key issue or revocation effective in this replica at once, and tell the others."""
        self._change(lambda snap: dataclasses.replace(snap, keys={**snap.keys, entry.key_id: entry}))
        self._announce([entry] if entry.revoked else [])

    def put_agent_models(self, tenant_id: str, agent_id: str, models: dict[str, int | None]) -> None:
        """Make an agent's enabled models (with priority overrides) effective here at once."""
        self._change(
            lambda snap: dataclasses.replace(
                snap, agent_models={**snap.agent_models, (tenant_id, agent_id): models}
            )
        )
        self._announce()

    def put(self, **changes: Any) -> None:
        """Replace whole parts of the snapshot at once (policies, task maps, ...) after a write here."""
        self._change(lambda snap: dataclasses.replace(snap, **changes))
        self._announce()

    def put_agent(self, entry: AgentEntry) -> None:
        """Make a new or changed agent visible in this replica at once."""
        self._change(
            lambda snap: dataclasses.replace(snap, agents={**snap.agents, (entry.tenant_id, entry.id): entry})
        )
        self._announce()

    def drop_agent(self, tenant_id: str, agent_id: str, revoked: list[KeyEntry]) -> None:
        """A deleted agent: gone from this replica at once, with its keys revoked."""
        key = (tenant_id, agent_id)

        def drop(snap: Snapshot) -> Snapshot:
            agents = {k: v for k, v in snap.agents.items() if k != key}
            models = {k: v for k, v in snap.agent_models.items() if k != key}
            keys = {**snap.keys, **{entry.key_id: entry for entry in revoked}}
            return dataclasses.replace(snap, agents=agents, agent_models=models, keys=keys)

        self._change(drop)
        self._announce(revoked)

    async def _rebuilt(self, session: AsyncSession) -> Snapshot:
        """A snapshot read from the database, with the local changes made while it was read."""
        began = self._version
        self._rebuilding += 1
        try:
            built = await _build(session)
        finally:
            self._rebuilding -= 1
        for version, change in self._changes:
            if version > began:
                built = change(built)
        if not self._rebuilding:
            self._changes.clear()
        return built

    async def refresh(self) -> None:
        """Rebuild now, so a control-plane write is visible to this replica when its response
        returns; the other replicas are told to rebuild too."""
        self._announce()
        try:
            await self.reload()
        except Exception as exc:  # the write succeeded; the background refresh will catch up
            log.warning("snapshot_refresh_failed", error_type=type(exc).__name__)
            self._dirty.set()

    def trigger(self) -> None:
        """Ask for a rebuild soon, here and in the other replicas (called after control-plane writes)."""
        self._announce()
        self._dirty.set()

    async def reload(self) -> Snapshot:
        """Rebuild from the database now."""
        async with self._sessions() as session:
            self._probe = await _probe(session)
            self.current = await self._rebuilt(session)
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
                        self.current = await self._rebuilt(session)
                        self._probe = probe
            except Exception as exc:  # keep serving the last snapshot while the database is away
                log.warning("snapshot_refresh_failed", error_type=type(exc).__name__)


def _revoke(snap: Snapshot, key_ids: Sequence[str]) -> Snapshot:
    """``snap`` with these keys (those it knows) marked revoked."""
    keys = dict(snap.keys)
    for key_id in key_ids:
        entry = keys.get(key_id)
        if entry is not None and not entry.revoked:
            keys[key_id] = dataclasses.replace(entry, revoked=True)
    return dataclasses.replace(snap, keys=keys)


def _probe_query() -> Select[Any]:
    """One statement of scalar subqueries: each watched table's row count and newest stamp, and the
    revoked keys' count. A change to any of them (another replica's write) means a rebuild."""
    stamps = (
        Provider.updated_at, Model.updated_at, Agent.updated_at, ApiKey.created_at,
        AgentModelConfig.enabled_at, RoutingPolicy.updated_at, SettingEntry.updated_at,
        Budget.updated_at, RateLimit.updated_at, DeploymentGroup.updated_at,
    )  # fmt: skip
    columns: list[Any] = []
    for stamp in stamps:
        columns.append(select(func.count()).select_from(stamp.class_).scalar_subquery())
        columns.append(select(func.max(stamp)).scalar_subquery())
    columns.append(select(func.count()).where(ApiKey.revoked_at.is_not(None)).scalar_subquery())
    return select(*columns)


_PROBE = _probe_query()


async def _probe(session: AsyncSession) -> tuple[Any, ...]:
    """What the poll compares from one round to the next (one round trip: it used to be twelve)."""
    return tuple((await session.execute(_PROBE)).one())


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
            "alias", "pricing_cache_read", "pricing_cache_write", "created_at",
        )
    ]  # fmt: skip
    models: dict[str, ModelEntry] = {}
    async for rows in _slices(session, select(*columns)):
        for r in rows:
            provider = providers.get(r.provider_id)
            models[r.id] = ModelEntry(
                r.id, r.provider_id, r.external_id, r.display_name, r.model_type,
                frozenset(r.capabilities or ()), r.priority, r.cost_tier, r.ctx_length,
                None if r.pricing_input is None else float(r.pricing_input),
                None if r.pricing_output is None else float(r.pricing_output),
                bool(r.is_available and r.is_enabled and provider is not None and provider.is_active),
                r.alias,
                None if r.pricing_cache_read is None else float(r.pricing_cache_read),
                None if r.pricing_cache_write is None else float(r.pricing_cache_write),
                _unix(r.created_at),
            )  # fmt: skip
    agents = {
        (a.tenant_id, a.id): AgentEntry(
            a.id,
            a.tenant_id,
            a.name,
            a.capsule or {},
            a.is_active,
            a.default_policy,
            stored_cache_rule(a.response_cache),
        )
        for a in (await session.scalars(select(Agent).where(Agent.deleted_at.is_(None)))).all()
    }
    keys = {
        k.id: KeyEntry(k.id, k.salt, k.secret_hash, k.agent_id, k.tenant_id, k.revoked_at is not None)
        for k in (await session.scalars(select(ApiKey))).all()
    }
    agent_models: dict[AgentKey, dict[str, int | None]] = {}
    enabled = select(
        AgentModelConfig.tenant_id,
        AgentModelConfig.agent_id,
        AgentModelConfig.model_id,
        AgentModelConfig.priority_override,
    ).where(AgentModelConfig.is_enabled.is_(True))
    async for rows in _slices(session, enabled):
        for tenant_id, agent_id, model_id, override in rows:
            if (tenant_id, agent_id) in agents:
                agent_models.setdefault((tenant_id, agent_id), {})[model_id] = override
    policies = {
        p.name: view_of(p.name, p.config)
        for p in (await session.scalars(select(RoutingPolicy))).all()
        if p.is_active
    }
    settings = {s.key: s.value for s in (await session.scalars(select(SettingEntry))).all()}
    task_policies = dict(settings.get(TASK_POLICIES_KEY) or DEFAULT_TASK_POLICIES)
    maps = settings.get(TASK_MAPS_KEY)
    task_maps = TaskMaps.from_dict(maps) if maps else None
    shared = frozenset(
        key.removeprefix(SHARING_KEY_PREFIX)
        for key, value in settings.items()
        if key.startswith(SHARING_KEY_PREFIX) and value.get("shared") is True
    )
    budgets: dict[tuple[str, str], tuple[BudgetView, ...]] = {}
    for b in (await session.scalars(select(Budget).order_by(Budget.created_at))).all():
        budgets[(b.scope, b.scope_id or "")] = (*budgets.get((b.scope, b.scope_id or ""), ()), budget_view(b))
    limits = {
        (r.tenant_id, r.scope, r.scope_id): limit_view(r)
        for r in (await session.scalars(select(RateLimit))).all()
    }
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
        shared,
        budgets,
        limits,
        **snapshot_parts(await load_groups(session)),
    )


def budget_view(b: Budget) -> BudgetView:
    return BudgetView(
        b.id, b.tenant_id, b.name, b.scope, b.scope_id, b.period,  # type: ignore[arg-type]
        float(b.amount_usd), b.alert_threshold, b.action,  # type: ignore[arg-type]
    )  # fmt: skip


def limit_view(r: RateLimit) -> LimitView:
    return LimitView(r.id, r.tenant_id, r.scope, r.scope_id, r.rpm, r.tpm, r.max_concurrent)


async def _slices(session: AsyncSession, query: Select[*_Ts]) -> AsyncIterator[Sequence[Row[*_Ts]]]:
    """The query's rows, ``BUILD_SLICE`` at a time: the loop runs other work between slices, so a
    catalog of tens of thousands of models never holds it for long while a snapshot is built."""
    result = await session.stream(query.execution_options(yield_per=BUILD_SLICE))
    async for rows in result.partitions():
        yield rows


def _unix(when: datetime | None) -> int:
    """Unix seconds of a stored time (SQLite hands back naive UTC)."""
    if when is None:
        return 0
    return int((when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp())


def _aliases(models: Any) -> dict[str, str]:
    """Name -> catalog id, one look-up on the hot path. An admin-set alias names its model (usable
    or not, so a disabled one answers "disabled", not "unknown") and wins over a provider's own
    model id, which names the usable model with the highest priority (ties: lowest id)."""
    best: dict[str, ModelEntry] = {}
    chosen: dict[str, str] = {}
    for m in models:
        if m.alias is not None:
            chosen[m.alias] = m.id
        if not m.usable:
            continue
        seen = best.get(m.external_id)
        if seen is None or (m.priority, seen.id) > (seen.priority, m.id):
            best[m.external_id] = m
    return {**{name: m.id for name, m in best.items()}, **chosen}
