"""Catalog queries and admin edits of models. Hand-set fields are remembered in ``overrides``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from turnout.catalog.schemas import (
    BulkModelUpdate,
    BulkResult,
    ModelCreate,
    ModelDetail,
    ModelFilter,
    ModelOut,
    ModelPage,
    ModelUpdate,
)
from turnout.errors import Conflict, InvalidRequest, NotFound
from turnout.modelinfo.discovered import capability_mask
from turnout.modelinfo.tiers import cost_tier_for
from turnout.store.groups import DeploymentGroup
from turnout.store.models import Model, Provider, utcnow


async def _nothing() -> None:
    """Default change hook: nothing to refresh."""


OVERRIDABLE_FIELDS = frozenset(
    {
        "display_name",
        "capabilities",
        "priority",
        "cost_tier",
        "domains",
        "ctx_length",
        "model_type",
        "pricing_input",
        "pricing_output",
        "pricing_cache_read",
        "pricing_cache_write",
    }
)


def model_id_for(provider_id: str, external_id: str) -> str:
    """The catalog id: ``{provider_id}/{external_id}``."""
    return f"{provider_id}/{external_id}"


def text_search(column: Any, q: str, dialect: str) -> ColumnElement[bool]:
    """Case-insensitive substring match in the dialect's cheapest form: ``ILIKE`` on PostgreSQL
    (served by a pg_trgm index when present), plain ``LIKE`` on SQLite (case-insensitive for ASCII
    and cheaper than ``lower(x) LIKE lower(y)``). Wildcards in ``q`` are escaped."""
    pattern = "%" + q.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    if dialect == "sqlite":
        return column.like(pattern, escape="/")
    return column.ilike(pattern, escape="/")


def filter_clauses(flt: ModelFilter, dialect: str = "postgresql") -> list[ColumnElement[bool]]:
    """SQL conditions for a filter (ORM expressions only)."""
    clauses: list[ColumnElement[bool]] = []
    if flt.provider is not None:
        clauses.append(Model.provider_id == flt.provider)
    if flt.cost_tier is not None:
        clauses.append(Model.cost_tier == flt.cost_tier)
    if flt.model_type is not None:
        clauses.append(Model.model_type == flt.model_type)
    if flt.available is not None:
        clauses.append(Model.is_available.is_(flt.available))
    if flt.enabled is not None:
        clauses.append(Model.is_enabled.is_(flt.enabled))
    if flt.capability:
        mask = capability_mask(flt.capability)
        clauses.append(Model.capability_mask.op("&")(mask) == mask)
    if flt.q is not None:
        clauses.append(or_(*(text_search(col, flt.q, dialect) for col in (Model.id, Model.display_name))))
    return clauses


class ModelService:
    """Read and edit the global model catalog."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], on_change: Callable[[], Awaitable[None]] = _nothing
    ) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._dialect = bind.dialect.name if bind is not None else "postgresql"
        self._on_change = on_change

    async def list(self, flt: ModelFilter, page: int, per_page: int) -> ModelPage:
        """One page of models matching ``flt``, ordered by id, with the total count.

        The page's ids are found first (narrow covering indexes, no wide rows touched), then only
        those rows are loaded, without their raw provider metadata.
        """
        clauses = filter_clauses(flt, self._dialect)
        async with self._sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Model).where(*clauses)) or 0
            ids = (
                await session.scalars(
                    select(Model.id)
                    .where(*clauses)
                    .order_by(Model.id)
                    .offset((page - 1) * per_page)
                    .limit(per_page)
                )
            ).all()
            rows = (
                (
                    await session.scalars(
                        select(Model).options(defer(Model.metadata_)).where(Model.id.in_(ids))
                    )
                ).all()
                if ids
                else []
            )
        rows = sorted(rows, key=lambda m: m.id)
        return ModelPage(items=[to_out(m) for m in rows], total=total, page=page, per_page=per_page)

    async def get(self, model_id: str) -> ModelDetail:
        """One model with its raw provider metadata, or 404."""
        async with self._sessions() as session:
            return to_detail(await self._load(session, model_id))

    async def create(self, body: ModelCreate) -> ModelDetail:
        """Register a model by hand (one the provider does not list)."""
        model_id = model_id_for(body.provider_id, body.external_id)
        async with _alias_guard(body.alias), self._sessions.begin() as session:
            if await session.get(Provider, body.provider_id) is None:
                raise NotFound(f"provider '{body.provider_id}' not found", param="provider_id")
            if await session.get(Model, model_id) is not None:
                raise Conflict(f"model '{model_id}' already exists", param="external_id", code="duplicate_id")
            if body.alias is not None:
                await _check_alias_free(session, body.alias, model_id)
            caps = list(dict.fromkeys(body.capabilities))
            model = Model(
                id=model_id,
                provider_id=body.provider_id,
                external_id=body.external_id,
                alias=body.alias,
                display_name=body.display_name or body.external_id,
                model_type=body.model_type,
                capabilities=caps,
                capability_mask=capability_mask(caps),
                priority=body.priority,
                cost_tier=body.cost_tier or cost_tier_for(body.pricing_input, body.pricing_output),
                domains=body.domains,
                ctx_length=body.ctx_length,
                pricing_input=body.pricing_input,
                pricing_output=body.pricing_output,
                pricing_cache_read=body.pricing_cache_read,
                pricing_cache_write=body.pricing_cache_write,
                is_available=True,
                is_enabled=True,
                is_custom=True,
                overrides=sorted(OVERRIDABLE_FIELDS & body.model_fields_set),
                metadata_=body.metadata,
                synced_at=None,
            )
            session.add(model)
        await self._on_change()
        return to_detail(model)

    async def update(self, model_id: str, body: ModelUpdate) -> ModelDetail:
        """Apply an admin edit; each edited field survives later syncs (``cost_tier: null`` lifts
        its pin: the tier follows the prices again)."""
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        for field in ("display_name", "model_type", "priority", "capabilities", "domains", "is_enabled"):
            if field in changes and changes[field] is None:
                raise InvalidRequest(f"{field} cannot be null", param=field)
        async with _alias_guard(changes.get("alias")), self._sessions.begin() as session:
            model = await self._load(session, model_id)
            if changes.get("alias") is not None:
                await _check_alias_free(session, changes["alias"], model_id)
            for field, value in changes.items():
                setattr(model, field, value)
            if "capabilities" in changes:
                model.capabilities = list(dict.fromkeys(changes["capabilities"]))
                model.capability_mask = capability_mask(model.capabilities)
            overridden = set(model.overrides) | (OVERRIDABLE_FIELDS & changes.keys())
            if "cost_tier" in changes and changes["cost_tier"] is None:  # no pin: the prices decide
                overridden.discard("cost_tier")
                model.cost_tier = cost_tier_for(model.pricing_input, model.pricing_output)
            elif "cost_tier" not in overridden and {"pricing_input", "pricing_output"} & changes.keys():
                model.cost_tier = cost_tier_for(model.pricing_input, model.pricing_output)
            model.overrides = sorted(overridden)
            model.updated_at = utcnow()
        await self._on_change()
        return to_detail(model)

    async def bulk_set_enabled(self, body: BulkModelUpdate) -> BulkResult:
        """Enable or disable every model matching a (non-empty) filter."""
        clauses = filter_clauses(body.filter, self._dialect)
        if not clauses:
            raise InvalidRequest("bulk update needs at least one filter criterion", param="filter")
        async with self._sessions.begin() as session:
            matched = await session.scalar(select(func.count()).select_from(Model).where(*clauses)) or 0
            result = await session.execute(
                update(Model)
                .where(*clauses, Model.is_enabled.is_not(body.is_enabled))
                .values(is_enabled=body.is_enabled, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        changed = int(getattr(result, "rowcount", 0) or 0)
        await self._on_change()
        return BulkResult(matched=matched, changed=changed, is_enabled=body.is_enabled)

    @staticmethod
    async def _load(session: AsyncSession, model_id: str) -> Model:
        model = await session.get(Model, model_id)
        if model is None:
            raise NotFound(f"model '{model_id}' not found", param="model_id")
        return model


def _alias_taken(alias: str, by: str | None = None) -> Conflict:
    owner = f" by model '{by}'" if by else ""
    return Conflict(f"alias '{alias}' is already used{owner}", param="alias", code="duplicate_alias")


async def _check_alias_free(session: AsyncSession, alias: str, model_id: str) -> None:
    """409 when another model already answers to ``alias`` (as its id or its alias)."""
    taken = await session.scalar(
        select(Model.id).where(or_(Model.alias == alias, Model.id == alias), Model.id != model_id).limit(1)
    )
    if taken is not None:
        raise _alias_taken(alias, taken)
    if await session.get(DeploymentGroup, alias) is not None:
        raise Conflict(f"alias '{alias}' is a deployment group's name", param="alias", code="duplicate_alias")


@asynccontextmanager
async def _alias_guard(alias: str | None) -> AsyncIterator[None]:
    """A concurrent write that took the alias first fails on the unique index: the same 409."""
    try:
        yield
    except IntegrityError as exc:
        if alias is None:
            raise
        raise _alias_taken(alias) from exc


def to_out(model: Model) -> ModelOut:
    """Public list view of a model."""
    return ModelOut(**_common(model))


def to_detail(model: Model) -> ModelDetail:
    """Public detail view, with the provider's raw metadata."""
    return ModelDetail(**_common(model), metadata=model.metadata_ or {})


def _common(model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "provider_id": model.provider_id,
        "external_id": model.external_id,
        "alias": model.alias,
        "display_name": model.display_name,
        "model_type": model.model_type,
        "capabilities": list(model.capabilities or []),
        "priority": model.priority,
        "cost_tier": model.cost_tier,
        "domains": list(model.domains or []),
        "ctx_length": model.ctx_length,
        "pricing_input": None if model.pricing_input is None else float(model.pricing_input),
        "pricing_output": None if model.pricing_output is None else float(model.pricing_output),
        "pricing_cache_read": None if model.pricing_cache_read is None else float(model.pricing_cache_read),
        "pricing_cache_write": None
        if model.pricing_cache_write is None
        else float(model.pricing_cache_write),
        "is_available": model.is_available,
        "is_enabled": model.is_enabled,
        "is_custom": model.is_custom,
        "overrides": list(model.overrides or []),
        "synced_at": model.synced_at,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
    }


def _price(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
