"""Provider sync: fetch the provider's catalog and upsert it in bulk.

Models that vanish are marked unavailable (never deleted); fields an admin set by hand
(``Model.overrides``) are left alone; on failure the last known catalog stays and the
error is recorded on the provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import structlog
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.catalog.fetch import ProviderConnection, fetch_models
from turnout.catalog.model_service import model_id_for
from turnout.catalog.providers import ProviderService
from turnout.catalog.schemas import SyncResult, external_id_problem
from turnout.catalog.self_hosted import provider_prices, with_provider_prices
from turnout.errors import Conflict, TurnoutError, UpstreamError
from turnout.modelinfo.discovered import DiscoveredModel, capability_mask
from turnout.modelinfo.tiers import cost_tier_for
from turnout.store.events import stage_event
from turnout.store.models import Model, Provider, utcnow

log = structlog.get_logger(__name__)

CHUNK = 2000
ANALYZE_AFTER_ROWS = 1000
REPORTED_SKIPS = 20
DISPLAY_NAME_MAX = 255
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(slots=True)
class _Plan:
    inserts: list[dict[str, Any]]
    updates: list[dict[str, Any]]
    removed: list[str]
    unchanged: int


def connection_of(provider: Provider) -> ProviderConnection:
    """How to reach a provider's models endpoint."""
    return ProviderConnection(
        provider_type=provider.provider_type,
        api_base=provider.api_base,
        models_endpoint=provider.models_endpoint,
        api_version=provider.api_version,
        price_id=provider.price_id,
    )


def _fingerprint_payload(found: DiscoveredModel) -> bytes:
    """Everything the provider reported, serialised: its hash skips unchanged rows cheaply."""
    return orjson.dumps(
        [
            found.display_name,
            found.model_type,
            found.capabilities,
            found.ctx_length,
            str(found.pricing_input),
            str(found.pricing_output),
            str(found.pricing_cache_read),
            str(found.pricing_cache_write),
            found.cost_tier,
            found.metadata,
        ],
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )


def partition_carriable(found: list[DiscoveredModel]) -> tuple[list[DiscoveredModel], list[str]]:
    """The models whose ids Turnout can carry, and a line per skipped one (id and reason)."""
    usable: list[DiscoveredModel] = []
    skipped: list[str] = []
    for item in found:
        problem = external_id_problem(item.external_id)
        if problem is None:
            usable.append(item)
        else:
            skipped.append(f"{item.external_id[:80]!r}: {problem}")
    return usable, skipped


def _skip_report(skipped: list[str]) -> str | None:
    if not skipped:
        return None
    shown = "; ".join(skipped[:REPORTED_SKIPS])
    more = f"; and {len(skipped) - REPORTED_SKIPS} more" if len(skipped) > REPORTED_SKIPS else ""
    return f"{len(skipped)} models skipped (ids Turnout cannot carry): {shown}{more}"[:1000]


def _without_nul(value: Any) -> Any:
    """``value`` with NUL removed from every string and key (PostgreSQL stores no NUL)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def storable(found: DiscoveredModel) -> tuple[DiscoveredModel, str]:
    """The model as the database can hold it (no NUL in its name or raw entry, the name within
    its column), and its fingerprint. The check rides on the fingerprint's serialisation."""
    payload = _fingerprint_payload(found)
    if b"\\u0000" in payload or len(found.display_name) > DISPLAY_NAME_MAX:
        name = found.display_name.replace("\x00", "")[:DISPLAY_NAME_MAX] or found.external_id
        found = dataclasses.replace(found, display_name=name, metadata=_without_nul(found.metadata))
        payload = _fingerprint_payload(found)
    return found, hashlib.blake2b(payload, digest_size=16).hexdigest()


class SyncService:
    """Runs provider syncs (one at a time per provider)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: ProviderService,
        http: Callable[[], aiohttp.ClientSession],
        *,
        timeout_s: float,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_change = on_change
        self._sessions = sessions
        self._providers = providers
        self._http = http
        self._timeout_s = timeout_s
        self._locks: dict[str, asyncio.Lock] = {}
        self._maintenance_due = False
        self._background: set[asyncio.Task[None]] = set()

    async def sync(self, provider_id: str, progress: Progress | None = None) -> SyncResult:
        """Sync one provider; concurrent syncs of the same provider run one after the other."""
        lock = self._locks.setdefault(provider_id, asyncio.Lock())
        async with lock:
            try:
                return await self._sync(provider_id, progress)
            except IntegrityError as exc:  # another replica synced the same provider at the same time
                raise Conflict(
                    f"provider '{provider_id}' was synced concurrently; retry", code="sync_conflict"
                ) from exc

    async def _sync(self, provider_id: str, progress: Progress | None = None) -> SyncResult:
        """Fetch and upsert; errors are recorded on the provider and re-raised."""
        started = time.perf_counter()
        report = progress or (lambda phase, done, total: None)
        async with self._sessions() as session:
            provider = await ProviderService.load(session, provider_id)
        if not provider.is_active:
            raise Conflict(
                f"provider '{provider_id}' is inactive", param="provider_id", code="provider_inactive"
            )
        report("fetch", 0, 1)
        try:
            credentials = await self._providers.credentials(provider)
            found = await fetch_models(
                self._http(), connection_of(provider), credentials, timeout_s=self._timeout_s
            )
        except TurnoutError as exc:
            await self._record_error(provider_id, exc.message)
            raise
        except Exception as exc:  # anything unexpected still leaves the old catalog in place
            await self._record_error(provider_id, f"sync failed: {type(exc).__name__}")
            raise UpstreamError(f"sync of '{provider_id}' failed: {type(exc).__name__}") from exc
        report("fetch", 1, 1)
        found, skipped = partition_carriable(found)
        found = with_provider_prices(found, provider_prices(provider))
        if skipped:
            log.warning("sync_skipped_models", provider_id=provider_id, count=len(skipped))
        now = utcnow()
        async with self._sessions.begin() as session:
            plan = await self._plan(session, provider_id, found, now)
            await self._apply(session, provider_id, plan, now, report)
            await session.execute(
                update(Provider)
                .where(Provider.id == provider_id)
                .values(last_synced=now, last_sync_error=_skip_report(skipped), updated_at=now)
            )
            stage_event(
                session,
                "provider.sync.completed",
                None,
                {
                    "provider_id": provider_id,
                    "models_discovered": len(found),
                    "models_added": len(plan.inserts),
                    "models_updated": len(plan.updates),
                    "models_removed": len(plan.removed),
                    "models_skipped": len(skipped),
                    "timestamp": now.isoformat().replace("+00:00", "Z"),
                },
            )
        self._on_change()
        if self._maintenance_due:
            self._maintenance_due = False
            task = asyncio.create_task(self._maintain())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return SyncResult(
            provider_id=provider_id,
            models_discovered=len(found),
            models_added=len(plan.inserts),
            models_updated=len(plan.updates),
            models_removed=len(plan.removed),
            models_unchanged=plan.unchanged,
            models_skipped=len(skipped),
            skipped=skipped[:REPORTED_SKIPS],
            synced_at=now,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )

    async def _plan(
        self, session: AsyncSession, provider_id: str, found: list[DiscoveredModel], now: datetime
    ) -> _Plan:
        rows = await session.execute(
            select(Model.id, Model.sync_hash, Model.is_available, Model.is_custom).where(
                Model.provider_id == provider_id
            )
        )
        existing = {r.id: r for r in rows}
        changed: list[tuple[str, DiscoveredModel, str]] = []
        plan = _Plan(inserts=[], updates=[], removed=[], unchanged=0)
        seen: set[str] = set()
        for item in found:
            model_id = model_id_for(provider_id, item.external_id)
            if model_id in seen:
                continue
            seen.add(model_id)
            item, digest = storable(item)
            old = existing.get(model_id)
            if old is None:
                plan.inserts.append(_insert_row(provider_id, model_id, item, digest, now))
            elif old.sync_hash != digest or not old.is_available:
                changed.append((model_id, item, digest))
            else:
                plan.unchanged += 1
        hand_set = await _hand_set_of(session, [mid for mid, _, _ in changed])
        plan.updates = [
            _update_row(mid, item, digest, hand_set.get(mid, _NOTHING_HAND_SET), now)
            for mid, item, digest in changed
        ]
        plan.removed = [
            mid for mid, r in existing.items() if mid not in seen and r.is_available and not r.is_custom
        ]
        return plan

    async def _apply(
        self, session: AsyncSession, provider_id: str, plan: _Plan, now: datetime, report: Progress
    ) -> None:
        total = len(plan.inserts) + len(plan.updates) + len(plan.removed)
        done = 0
        report("write", 0, total)
        for chunk in _chunks(plan.inserts):
            await session.execute(insert(Model), chunk)
            done += len(chunk)
            report("write", done, total)
        for chunk in _chunks(plan.updates):
            await session.execute(update(Model), chunk)
            done += len(chunk)
            report("write", done, total)
        for chunk in _chunks([{"id": mid, "is_available": False, "updated_at": now} for mid in plan.removed]):
            await session.execute(update(Model), chunk)
            done += len(chunk)
            report("write", done, total)
        if total > ANALYZE_AFTER_ROWS:
            self._maintenance_due = True

    async def _maintain(self) -> None:
        """After a bulk change, refresh planner statistics (PostgreSQL also vacuums, so list counts
        can use index-only scans). Constant maintenance statements, run outside the sync's transaction."""
        engine = self._sessions.kw["bind"]
        try:
            async with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await conn.execute(text("VACUUM (ANALYZE) llm_model_catalog"))
                else:
                    await conn.execute(text("PRAGMA optimize"))
        except Exception as exc:  # statistics are an optimisation; never fail a sync for them
            log.warning("catalog_maintenance_failed", error_type=type(exc).__name__)

    async def wait_maintenance(self) -> None:
        """Wait for background maintenance (used at shutdown and by benchmarks)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _record_error(self, provider_id: str, message: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Provider).where(Provider.id == provider_id).values(last_sync_error=message[:1000])
            )
            stage_event(
                session,
                "provider.sync.failed",
                None,
                {
                    "provider_id": provider_id,
                    "error": message[:1000],
                    "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
                },
            )


def _provider_fields(item: DiscoveredModel) -> dict[str, Any]:
    caps = list(item.capabilities)
    return {
        "display_name": item.display_name,
        "model_type": item.model_type,
        "capabilities": caps,
        "capability_mask": capability_mask(caps),
        "cost_tier": item.cost_tier,
        "ctx_length": item.ctx_length,
        "pricing_input": item.pricing_input,
        "pricing_output": item.pricing_output,
        "pricing_cache_read": item.pricing_cache_read,
        "pricing_cache_write": item.pricing_cache_write,
    }


def _insert_row(
    provider_id: str, model_id: str, item: DiscoveredModel, digest: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": model_id,
        "provider_id": provider_id,
        "external_id": item.external_id,
        **_provider_fields(item),
        "priority": 50,
        "domains": [],
        "is_available": True,
        "is_enabled": True,
        "is_custom": False,
        "overrides": [],
        "sync_hash": digest,
        "metadata_": item.metadata,
        "synced_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _update_row(
    model_id: str, item: DiscoveredModel, digest: str, hand_set: _HandSet, now: datetime
) -> dict[str, Any]:
    overrides = hand_set.fields
    fields = {k: v for k, v in _provider_fields(item).items() if k not in overrides}
    if "capabilities" in overrides:
        fields.pop("capability_mask", None)
    if "cost_tier" not in overrides and _PRICES & overrides:  # the tier of the prices the model keeps
        fields["cost_tier"] = cost_tier_for(
            hand_set.pricing_input if "pricing_input" in overrides else item.pricing_input,
            hand_set.pricing_output if "pricing_output" in overrides else item.pricing_output,
        )
    return {
        "id": model_id,
        **fields,
        "is_available": True,
        "sync_hash": digest,
        "metadata_": item.metadata,
        "synced_at": now,
        "updated_at": now,
    }


@dataclass(frozen=True, slots=True)
class _HandSet:
    """What an admin set on a model: the field names, and the prices (a tier is derived from them)."""

    fields: frozenset[str]
    pricing_input: Decimal | None = None
    pricing_output: Decimal | None = None


_NOTHING_HAND_SET = _HandSet(frozenset())
_PRICES = frozenset({"pricing_input", "pricing_output"})


async def _hand_set_of(session: AsyncSession, model_ids: list[str]) -> dict[str, _HandSet]:
    """Hand-set fields of the given models (only rows that changed are read)."""
    found: dict[str, _HandSet] = {}
    columns = (Model.id, Model.overrides, Model.pricing_input, Model.pricing_output)
    for start in range(0, len(model_ids), CHUNK):
        chunk = model_ids[start : start + CHUNK]
        rows = await session.execute(select(*columns).where(Model.id.in_(chunk)))
        for r in rows:
            if r.overrides:
                found[r.id] = _HandSet(frozenset(r.overrides), r.pricing_input, r.pricing_output)
    return found


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]
