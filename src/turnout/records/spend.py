"""Spend reports: the call records' tokens and cost summed per one or two dimensions.

Tenant admins see their tenant's spend only; platform admins see every tenant's. Costs are summed
exactly: PostgreSQL sums NUMERIC; SQLite keeps NUMERIC as a float, so there each cost is summed as
an integer count of 1e-8 USD (the column's scale), which a float holds exactly up to $90M. Days,
ISO weeks (from Monday) and months are UTC periods named by their first day (``YYYY-MM-DD``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.errors import Forbidden, InvalidRequest
from turnout.jsontypes import Usd
from turnout.store.messages import Message

# dimension -> the Message column it groups or filters by
COLUMNS: dict[str, Any] = {
    "tenant": Message.tenant_id,
    "agent": Message.agent_id,
    "api_key": Message.api_key_id,
    "model": Message.model,
    "provider": Message.provider,
    "task_type": Message.task_type,
    "policy": Message.policy,
}
PERIODS = ("day", "week", "month")
DIMENSIONS = (*COLUMNS, *PERIODS)
MAX_GROUPS = 2
UNITS = Decimal(100_000_000)  # 1e-8 USD: messages.cost_usd's scale
TOKEN_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


class SpendRow(BaseModel):
    """One group's spend (``group``: the group_by dimensions' values; null where a call had none)."""

    group: dict[str, str | None]
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: Usd = Field(description="exact sum of the calls' costs (8 decimals)")
    estimated_cost_usd: Usd = Field(description="the part of cost_usd that is an estimate")
    estimated_share: float = Field(description="estimated_cost_usd / cost_usd (0 when nothing was spent)")
    unpriced_calls: int = Field(
        description="answered calls with no cost: no usage, or a model with no price (failed and "
        "refused calls cost nothing and are not counted here)"
    )


class SpendReport(BaseModel):
    """``GET /api/v2/spend``: the rows, ordered by their group (a page of them: ``offset``,
    ``limit``), and the total of all rows."""

    group_by: list[str]
    start: datetime | None = Field(serialization_alias="from")
    end: datetime | None = Field(serialization_alias="to")
    rows: list[SpendRow]
    total: SpendRow
    row_count: int = Field(0, description="rows in the whole report, on every page")
    offset: int = 0
    limit: int | None = Field(None, description="rows a page holds at most (null: all)")
    has_more: bool = Field(False, description="rows follow this page")

    def page(self, offset: int, limit: int | None) -> SpendReport:
        """The report with ``limit`` of its rows from ``offset`` (all from there when None); the
        total and ``row_count`` still cover every row."""
        end = None if limit is None else offset + limit
        return self.model_copy(
            update={
                "rows": self.rows[offset:end],
                "offset": offset,
                "limit": limit,
                "has_more": end is not None and end < len(self.rows),
            }
        )


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """A checked spend question: at most two dimensions, a UTC window (``end`` exclusive), filters."""

    group_by: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    filters: Mapping[str, str]

    @classmethod
    def parse(
        cls,
        group_by: Iterable[str] | None,
        start: str | None,
        end: str | None,
        filters: Mapping[str, str | None],
    ) -> SpendQuery:
        """Check raw parameters (``group_by`` items may hold comma-separated names); a bad one is an
        ``InvalidRequest`` naming it."""
        names: list[str] = []
        for item in group_by or ():
            names += [part.strip() for part in item.split(",") if part.strip()]
        for name in names:
            if name not in DIMENSIONS:
                raise InvalidRequest(
                    f"group_by: unknown dimension {name[:50]!r}; expected one of {', '.join(DIMENSIONS)}",
                    param="group_by",
                )
        names = list(dict.fromkeys(names))
        if len(names) > MAX_GROUPS:
            raise InvalidRequest(f"group_by takes at most {MAX_GROUPS} dimensions", param="group_by")
        if sum(name in PERIODS for name in names) > 1:
            raise InvalidRequest("group_by takes at most one of day, week, month", param="group_by")
        unknown = set(filters) - set(COLUMNS)
        if unknown:
            raise InvalidRequest(f"unknown filter {sorted(unknown)[0]!r}", param=sorted(unknown)[0])
        lower, upper = _instant(start, "from"), _instant(end, "to")
        if lower is not None and upper is not None and lower >= upper:
            raise InvalidRequest("from must be before to (to is exclusive)", param="from")
        given = {name: value for name, value in filters.items() if value is not None}
        return cls(tuple(names), lower, upper, given)


def _instant(value: str | None, param: str) -> datetime | None:
    """An ISO date (its midnight) or datetime, in UTC; one without a zone is taken as UTC."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # overflow: year 9999 at -05:00 is year 10000 in UTC
        raise InvalidRequest(
            f"{param} must be an ISO date (2026-01-31) or datetime (2026-01-31T12:00:00Z)", param=param
        ) from None


def _period(name: str, dialect: str) -> ColumnElement[Any]:
    """The UTC day, ISO week or month a call falls in, as its first day's ``YYYY-MM-DD``."""
    created = Message.created_at
    if dialect == "postgresql":
        utc = func.timezone(_inline("UTC"), created)
        return func.to_char(func.date_trunc(_inline(name), utc), _inline("YYYY-MM-DD"))
    if name == "day":
        return func.date(created)
    if name == "week":  # the next Sunday (or this one), then back to its Monday
        return func.date(created, _inline("weekday 0"), _inline("-6 days"))
    return func.strftime(_inline("%Y-%m-01"), created)


def _inline(value: str) -> ColumnElement[str]:
    """A constant rendered into the statement: PostgreSQL matches a GROUP BY expression to its
    select-list twin only when no parameter differs between them."""
    return literal(value, literal_execute=True)


def _cost_sum(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.coalesce(func.sum(column), 0)
    return func.coalesce(func.sum(cast(func.round(column * 100_000_000), BigInteger)), 0)


def _as_usd(value: Any, dialect: str) -> Decimal:
    if dialect == "postgresql":
        return Decimal(value)
    return Decimal(int(value)) / UNITS


_ESTIMATED = case((Message.cost_estimated.is_(True), Message.cost_usd))  # a cost that is an estimate


class SpendQueries:
    """Spend reports for the control plane."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def report(self, query: SpendQuery, principal: Principal) -> SpendReport:
        """``query``'s rows and total, within the caller's tenant (every tenant for platform admins)."""
        filters = dict(query.filters)
        if not principal.has_any("platform_admin"):
            wanted = filters.get("tenant")
            if wanted is not None and wanted != principal.tenant_id:
                raise Forbidden("only platform admins may read other tenants' spend", param="tenant")
            filters["tenant"] = principal.tenant_id
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            keys = [
                (COLUMNS[name] if name in COLUMNS else _period(name, dialect)).label(f"g{i}")
                for i, name in enumerate(query.group_by)
            ]
            measures = [
                func.count().label("calls"),
                *(func.coalesce(func.sum(getattr(Message, f)), 0).label(f) for f in TOKEN_FIELDS),
                _cost_sum(Message.cost_usd, dialect).label("cost"),
                _cost_sum(_ESTIMATED, dialect).label("estimated"),
                func.count(case((and_(Message.cost_usd.is_(None), Message.status == "ok"), 1))).label(
                    "unpriced"
                ),  # answered calls with no cost; a failed or refused one cost nothing
            ]
            stmt = select(*keys, *measures).select_from(Message)
            for name, value in filters.items():
                stmt = stmt.where(COLUMNS[name] == value)
            if query.start is not None:
                stmt = stmt.where(Message.created_at >= query.start)
            if query.end is not None:
                stmt = stmt.where(Message.created_at < query.end)
            rows = (await session.execute(stmt.group_by(*keys) if keys else stmt)).all()
        found = [_row(query.group_by, r, dialect) for r in rows if r.calls]
        found.sort(key=lambda row: tuple(v or "" for v in row.group.values()))
        return SpendReport(
            group_by=list(query.group_by),
            start=query.start,
            end=query.end,
            rows=found,
            total=_total(found),  # summed here: the rows and their total come from one statement
            row_count=len(found),
        )


def _total(rows: list[SpendRow]) -> SpendRow:
    cost = sum((r.cost_usd for r in rows), Decimal(0))
    estimated = sum((r.estimated_cost_usd for r in rows), Decimal(0))
    return SpendRow(
        group={},
        calls=sum(r.calls for r in rows),
        **{f: sum(getattr(r, f) for r in rows) for f in TOKEN_FIELDS},
        cost_usd=cost,
        estimated_cost_usd=estimated,
        estimated_share=_share(estimated, cost),
        unpriced_calls=sum(r.unpriced_calls for r in rows),
    )


def _share(estimated: Decimal, cost: Decimal) -> float:
    return round(float(estimated / cost), 4) if cost else 0.0


def _row(group_by: tuple[str, ...], r: Any, dialect: str) -> SpendRow:
    cost, estimated = _as_usd(r.cost, dialect), _as_usd(r.estimated, dialect)
    return SpendRow(
        group={name: None if r[i] is None else str(r[i]) for i, name in enumerate(group_by)},
        calls=r.calls,
        **{f: int(getattr(r, f)) for f in TOKEN_FIELDS},
        cost_usd=cost,
        estimated_cost_usd=estimated,
        estimated_share=_share(estimated, cost),
        unpriced_calls=r.unpriced,
    )


MEASURES = (
    "calls",
    *TOKEN_FIELDS,
    "cost_usd",
    "estimated_cost_usd",
    "estimated_share",
    "unpriced_calls",
)


def csv_text(report: SpendReport) -> str:
    """The report as CSV: a header row (the group_by dimensions, then the measures), its rows, and
    no total (a spreadsheet sums the columns). Costs keep their 8 decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*report.group_by, *MEASURES])
    for row in report.rows:
        values = row.model_dump()
        writer.writerow(
            [*(_inert(row.group[name] or "") for name in report.group_by), *(values[m] for m in MEASURES)]
        )
    return out.getvalue()


def _inert(cell: str) -> str:
    """A group's name as a cell no spreadsheet runs as a formula: callers write some of them
    (``task_type``), so one starting with ``= + - @``, a tab or a carriage return gets a leading
    apostrophe (OWASP's advice against CSV injection)."""
    return "'" + cell if cell[:1] in _FORMULA_STARTS else cell


_FORMULA_STARTS = frozenset("=+-@\t\r")
