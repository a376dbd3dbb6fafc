"""The journal's line format, and what a record becomes in the database.

A record is one JSON document per line (orjson never emits a raw newline inside a document):
``encode_line`` is strict and says when a record is not plain JSON (then it is cleaned first);
``encode`` never fails. ``JournalReader`` reads a file back in batches (also the files of earlier
versions: the outage journal and ``rejected.jsonl``). ``to_row`` turns a submitted or journaled
record back into a complete, typed Message row; ``is_transient`` tells a failed insert that must
wait for the database (unreachable) from one it refused (bad data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import orjson
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.types import TypeDecorator

from turnout.store.messages import Message

log = structlog.get_logger(__name__)

_OPTIONS = orjson.OPT_NON_STR_KEYS
_MISSING = object()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)  # never fail to journal: an odd value becomes its text


def encode(records: Iterable[dict[str, Any]]) -> bytes:
    """One JSON document per line; an odd value becomes its text."""
    return b"".join(orjson.dumps(record, default=_default, option=_OPTIONS) + b"\n" for record in records)


def _decimal_only(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def encode_line(record: dict[str, Any]) -> bytes | None:
    """``record`` as one line, or None when it holds something that is not plain JSON (a set, a
    non-text key, an integer beyond 64 bits, a lone surrogate): what the databases' JSON refuses too."""
    try:
        return orjson.dumps(record, default=_decimal_only) + b"\n"
    except orjson.JSONEncodeError:
        return None


NUL_ESCAPE = b"\\u0000"  # how a NUL inside any string of a record shows on its encoded line


def _factory(default: Any) -> Callable[[], Any]:
    if default is None:
        return lambda: None
    if default.is_callable:
        return lambda: default.arg(None)  # SQLAlchemy wraps the callable to take a context
    return lambda: default.arg


def _as_datetime(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _as_decimal(value: Any) -> Any:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class ColumnPlan(NamedTuple):
    """How a record's attribute becomes its Message column's value."""

    key: str  # the Message attribute (the record's key)
    column: str  # the column's name
    default: Callable[[], Any]  # the value when the record lacks the key
    typed: Callable[[Any], Any] | None  # applied to a non-None value (journaled text back to its type)


def _column_plans() -> dict[str, ColumnPlan]:
    plans: dict[str, ColumnPlan] = {}
    for attr in Message.__mapper__.column_attrs:
        column = attr.columns[0]
        typed: Callable[[Any], Any] | None = None
        try:
            sql_type = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
            python_type = sql_type.python_type
        except NotImplementedError:
            python_type = None
        if python_type is datetime:
            typed = _as_datetime
        elif python_type is Decimal:
            typed = _as_decimal
        plans[attr.key] = ColumnPlan(attr.key, column.name, _factory(column.default), typed)
    return plans


COLUMN_PLANS = _column_plans()


def to_row(record: dict[str, Any]) -> dict[str, Any]:
    """A complete, typed Message row, keyed by column name, from a submitted or journaled record
    (Message attribute names; unknown keys dropped)."""
    row: dict[str, Any] = {}
    for key, column, default, typed in COLUMN_PLANS.values():
        value = record.get(key, _MISSING)
        if value is _MISSING:
            value = default()
        elif value is not None and typed is not None:
            value = typed(value)
        row[column] = value
    return row


# SQLSTATE classes of errors that pass: connection, rollback (deadlock), resources, lock, shutdown, system
_TRANSIENT_SQLSTATES = ("08", "40", "53", "55", "57", "58")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return seen


def is_transient(exc: BaseException) -> bool:
    """True for errors that say the database is unreachable or busy, not that the data is bad."""
    for err in _chain(exc):
        if isinstance(err, asyncpg.DataError):  # client-side encoding of a bad value
            return False
        if isinstance(
            err,
            OSError  # includes ConnectionRefusedError and TimeoutError
            | sa_exc.OperationalError
            | sa_exc.DisconnectionError
            | sa_exc.TimeoutError
            | asyncpg.PostgresConnectionError
            | asyncpg.InterfaceError,
        ):
            return True
        if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
            return True
        sqlstate = getattr(err, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return True
    return False


class JournalReader:
    """Reads a rotated file in batches, remembering the offset after the last batch handed out."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self._file = path.open("rb")
        self._file.seek(offset)
        self.offset = offset

    def next_batch(self, size: int) -> list[dict[str, Any]]:
        """Up to ``size`` records; [] at the end. Unparsable lines (a torn last write) are skipped;
        a line of an earlier version's ``rejected.jsonl`` gives its record."""
        batch: list[dict[str, Any]] = []
        while len(batch) < size:
            line = self._file.readline()
            if not line:
                break
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("journal.bad_line", path=str(self.path), offset=self._file.tell() - len(line))
                continue
            if isinstance(record, dict) and isinstance(record.get("record"), dict) and "error" in record:
                record = record["record"]
            if isinstance(record, dict):
                batch.append(record)
        self.offset = self._file.tell()
        return batch

    def close(self) -> None:
        self._file.close()
