"""Every record fits its Message row before it is journaled: checked cheaply, cleaned when it does not.

The database refuses a row with NUL in text or JSON (PostgreSQL), a string wider than its column,
an integer beyond 32 bits, a cost beyond NUMERIC(18, 8), a NULL in a NOT NULL column or a value
the driver cannot bind; one such row used to fail its whole batch, which was then inserted row by
row, and the row itself was dropped (a caller could leave its calls unrecorded that way). Here a
record that does not fit is stored in a cleaned form instead: text loses NUL and lone surrogates
(each becomes U+FFFD) and is cut to its column's width, out-of-range numbers and values of the
wrong type become NULL (or a placeholder where NULL is not allowed), and the names of the changed
fields are kept in ``metadata.sanitised``. The rules come from the Message table itself, so a new
column is covered without a change here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, Numeric, String, Table
from sqlalchemy.types import TypeDecorator, TypeEngine

from turnout.ids import new_id
from turnout.records.journal import COLUMN_PLANS
from turnout.store.messages import Message
from turnout.store.models import utcnow

# what no column stores: NUL (PostgreSQL text and JSONB refuse it) and lone surrogates (no UTF-8 form)
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # INTEGER on PostgreSQL
JSON_INT = 2**63  # orjson and the databases' JSON take 64-bit integers
PLACEHOLDER = "unknown"  # a NOT NULL text column the record left empty
MAX_DEPTH = 32  # deeper JSON is kept as its text
SANITISED = "sanitised"  # metadata key listing the fields a record lost or changed
REFUSED = "refused"  # metadata key of a record stored in its minimal form


def clean_text(value: str) -> str:
    """``value`` without what no column stores (NUL, lone surrogates), each replaced by U+FFFD."""
    return UNSTORABLE.sub("\ufffd", value) if UNSTORABLE.search(value) else value


def _base_type(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    return column_type.impl if isinstance(column_type, TypeDecorator) else column_type  # type: ignore[return-value]


class _Changes:
    """Whether cleaning a JSON value changed anything."""

    __slots__ = ("changed",)

    def __init__(self) -> None:
        self.changed = False


def _clean_json(value: Any, changes: _Changes, depth: int = 0) -> Any:
    """A JSON document both databases store: text cleaned, keys as text, odd types as their text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        cleaned = clean_text(value)
        changes.changed |= cleaned is not value
        return cleaned
    if isinstance(value, int):
        if -JSON_INT < value < JSON_INT:
            return value
        changes.changed = True
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        changes.changed = True
        return None
    if depth >= MAX_DEPTH:
        changes.changed = True
        return clean_text(orjson.dumps(value, default=str).decode())
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            cleaned_key = clean_text(name)
            changes.changed |= cleaned_key is not key
            out[cleaned_key] = _clean_json(item, changes, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        changes.changed |= not isinstance(value, list | tuple)
        return [_clean_json(item, changes, depth + 1) for item in value]
    if isinstance(value, orjson.Fragment):  # the routing decision, already serialised
        try:
            return _clean_json(orjson.loads(orjson.dumps(value)), changes, depth)
        except orjson.JSONDecodeError:
            changes.changed = True
            return None
    if isinstance(value, Decimal):
        return _clean_json(float(value), changes, depth)
    if isinstance(value, datetime):
        return value.isoformat()
    changes.changed = True
    if isinstance(value, bytes):
        return clean_text(value.decode("utf-8", "replace"))
    return clean_text(str(value))


_MISSING = object()


@dataclass(frozen=True)
class _Rule:
    """How one column's value is checked and cleaned."""

    key: str  # the Message attribute (the record's key)
    kind: str  # text | int | bool | numeric | float | datetime | json
    nullable: bool
    has_default: bool
    limit: int | None = None  # text: the column's width
    bound: Decimal | None = None  # numeric: |value| must stay below this
    container: type | None = None  # json: list or dict


def _rule(key: str, table: Table, column_name: str) -> _Rule:
    column = table.c[column_name]
    base = _base_type(column.type)
    limit: int | None = None
    bound: Decimal | None = None
    container: type | None = None
    if isinstance(base, Boolean):
        kind = "bool"
    elif isinstance(base, Integer):
        kind = "int"
    elif isinstance(base, Float):  # before Numeric: Float is a Numeric
        kind = "float"
    elif isinstance(base, Numeric):
        kind, bound = "numeric", Decimal(10) ** ((base.precision or 18) - (base.scale or 0))
    elif isinstance(base, String):  # Text is a String without a length
        kind, limit = "text", base.length
    elif isinstance(base, JSON):
        sample = COLUMN_PLANS[key].default()
        kind, container = "json", type(sample) if sample is not None else dict
    elif isinstance(base, DateTime):
        kind = "datetime"
    else:
        raise TypeError(f"messages.{column_name}: no sanitising rule for {type(base).__name__}")
    nullable, has_default = bool(column.nullable), column.default is not None
    return _Rule(key, kind, nullable, has_default, limit, bound, container)


@dataclass
class RecordShape:
    """The Message table's limits, as a quick check (``fits``) and a cleaner (``clean``)."""

    rules: list[_Rule]
    _required: tuple[str, ...] = field(init=False)  # NOT NULL without a default: must be given
    _not_null: tuple[str, ...] = field(init=False)  # NOT NULL with a default: may be absent, never None
    _texts: tuple[tuple[str, int], ...] = field(init=False)
    _free_texts: tuple[str, ...] = field(init=False)
    _ints: tuple[str, ...] = field(init=False)
    _bools: tuple[str, ...] = field(init=False)
    _numerics: tuple[tuple[str, float], ...] = field(init=False)
    _floats: tuple[str, ...] = field(init=False)
    _datetimes: tuple[str, ...] = field(init=False)
    _jsons: tuple[tuple[str, type], ...] = field(init=False)

    def __post_init__(self) -> None:
        rules = self.rules
        self._required = tuple(r.key for r in rules if not r.nullable and not r.has_default)
        self._not_null = tuple(r.key for r in rules if not r.nullable and r.has_default)
        self._texts = tuple((r.key, r.limit) for r in rules if r.kind == "text" and r.limit is not None)
        self._free_texts = tuple(r.key for r in rules if r.kind == "text" and r.limit is None)
        self._ints = tuple(r.key for r in rules if r.kind == "int")
        self._bools = tuple(r.key for r in rules if r.kind == "bool")
        self._numerics = tuple((r.key, float(r.bound)) for r in rules if r.bound is not None)
        self._floats = tuple(r.key for r in rules if r.kind == "float")
        self._datetimes = tuple(r.key for r in rules if r.kind == "datetime")
        self._jsons = tuple((r.key, r.container) for r in rules if r.container is not None)

    @classmethod
    def of_messages(cls) -> RecordShape:
        """The shape of the Message table (attribute names, as records use them)."""
        table = Message.__table__
        assert isinstance(table, Table)
        return cls([_rule(plan.key, table, plan.column) for plan in COLUMN_PLANS.values()])

    def fits(self, record: dict[str, Any]) -> bool:
        """True when every value has its column's type and fits its width and range (NUL and the
        contents of JSON values are checked on the record's encoded line, not here). ~2 us."""
        get = record.get
        for key in self._required:
            if get(key) is None:
                return False
        for key in self._not_null:
            if key in record and record[key] is None:
                return False
        for key, limit in self._texts:
            value = get(key)
            if value is not None and (type(value) is not str or len(value) > limit):
                return False
        for key in self._free_texts:
            value = get(key)
            if value is not None and type(value) is not str:
                return False
        for key in self._ints:
            value = get(key)
            if value is not None and (type(value) is not int or not INT_MIN <= value <= INT_MAX):
                return False
        for key in self._bools:
            value = get(key)
            if value is not None and type(value) is not bool:
                return False
        for key, bound in self._numerics:
            value = get(key)
            if value is not None and (type(value) not in (float, int, Decimal) or not -bound < value < bound):
                return False  # NaN fails the comparison too
        for key in self._floats:
            value = get(key)
            if value is not None and (type(value) not in (float, int) or not math.isfinite(value)):
                return False
        for key in self._datetimes:
            value = get(key)
            if value is not None and not isinstance(value, datetime):
                return False
        for key, container in self._jsons:
            value = get(key)
            if value is not None and type(value) is not container:
                return False
        return True

    def clean(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """A copy of ``record`` that fits (unknown keys dropped), and the fields that changed.

        Journaled forms of a value (an ISO datetime, a decimal's text) are typed back, not counted
        as changes. The changed fields are listed in the copy's ``metadata.sanitised``."""
        out: dict[str, Any] = {}
        changed: list[str] = []
        for rule in self.rules:
            value = record.get(rule.key, _MISSING)
            if value is _MISSING:
                if rule.has_default or rule.nullable:
                    continue  # the column default applies
                value = None
            cleaned, ok = _CLEANERS[rule.kind](rule, value)
            if cleaned is None and not rule.nullable:
                default = COLUMN_PLANS[rule.key].default() if rule.has_default else None
                cleaned, ok = (self._placeholder(rule) if default is None else default), False
            out[rule.key] = cleaned
            if not ok:
                changed.append(rule.key)
        if changed:
            meta = out.get("metadata_")
            meta = dict(meta) if isinstance(meta, dict) else {}
            meta[SANITISED] = changed
            out["metadata_"] = meta
        return out, changed

    def minimal(self, record: dict[str, Any], reason: str) -> dict[str, Any]:
        """The least of ``record`` a Message row needs, for a row the database refused even cleaned:
        who, when and how it ended, with the refusal's reason in ``error`` and ``metadata.refused``."""
        cleaned, _ = self.clean(record)
        keep = {"id", "tenant_id", "agent_id", "dialect", "endpoint", "status", "http_status", "created_at"}
        out = {key: value for key, value in cleaned.items() if key in keep}
        error_limit = next((r.limit for r in self.rules if r.key == "error"), None) or 1000
        out["error"] = clean_text(f"record refused by the database: {reason}")[:error_limit]
        out["metadata_"] = {REFUSED: clean_text(reason)[:1000]}
        for rule in self.rules:  # a column added later without a default still gets a value
            if rule.key not in out and not rule.nullable and not rule.has_default:
                out[rule.key] = self._placeholder(rule)
        return out

    @staticmethod
    def _placeholder(rule: _Rule) -> Any:
        if rule.key == "id":
            return new_id()
        return {
            "text": PLACEHOLDER,
            "int": 0,
            "bool": False,
            "numeric": Decimal(0),
            "float": 0.0,
            "datetime": utcnow(),
            "json": None if rule.container is None else rule.container(),
        }[rule.kind]


def _text(rule: _Rule, value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, True
    ok = isinstance(value, str)
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif not ok:
        text = str(value)
    else:
        text = value
    cleaned = clean_text(text)
    ok = ok and cleaned is text
    if rule.limit is not None and len(cleaned) > rule.limit:
        cleaned, ok = cleaned[: rule.limit], False
    return cleaned, ok


def _int(rule: _Rule, value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, True
    number: int | None = None
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None or not INT_MIN <= number <= INT_MAX:
        return None, False
    return number, type(value) is int


def _bool(rule: _Rule, value: Any) -> tuple[Any, bool]:
    if value is None or isinstance(value, bool):
        return value, True
    if isinstance(value, int) and value in (0, 1):
        return bool(value), False
    return None, False


def _numeric(rule: _Rule, value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, True
    journaled = isinstance(value, str)  # the journal keeps a Decimal as its text
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None, False
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None, False
    assert rule.bound is not None
    if not number.is_finite() or abs(number) >= rule.bound:
        return None, False
    return (number if journaled else value), True


def _float(rule: _Rule, value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, True
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value, True
    return None, False


def _datetime(rule: _Rule, value: Any) -> tuple[Any, bool]:
    if value is None or isinstance(value, datetime):
        return value, True
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value), True  # the journal's form
        except ValueError:
            pass
    return None, False


def _json(rule: _Rule, value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, True
    changes = _Changes()
    cleaned = _clean_json(value, changes)
    container = rule.container or dict
    if not isinstance(cleaned, container):
        changes.changed = True
        cleaned = [cleaned] if container is list else {"value": cleaned}
    return cleaned, not changes.changed


_CLEANERS: dict[str, Callable[[_Rule, Any], tuple[Any, bool]]] = {
    "text": _text,
    "int": _int,
    "bool": _bool,
    "numeric": _numeric,
    "float": _float,
    "datetime": _datetime,
    "json": _json,
}
