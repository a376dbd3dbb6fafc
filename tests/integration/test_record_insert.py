"""RowInserter: on an SQLite file it binds rows itself (SQLAlchemy's compiled multi-row statements
and bind processors); what it stores must be exactly what Core stores."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from turnout.records.insert import RowInserter, _statement
from turnout.records.journal import encode, to_row
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.messages import Message
from turnout.store.migrate import upgrade

AWKWARD = 'it\'s "quoted"; DROP TABLE messages; -- ünïcødé \u2603 \x00 end'


def records() -> list[dict[str, Any]]:
    """Records with every kind of column value: text, NULL, booleans, numbers, JSON, datetimes; as
    the gateway submits them (a float cost) and as the journal gives them back (text)."""
    created = datetime(2026, 12, 1, 18, 0, 0, 123456, tzinfo=UTC)
    full = {
        "id": str(uuid.uuid4()), "conversation_id": "c-1", "agent_id": "bot", "tenant_id": "acme",
        "user_id": "agent:bot", "role": "assistant", "model": "sim/gpt-4o", "provider": "sim",
        "dialect": "anthropic", "endpoint": "messages", "stream": True, "status": "error",
        "http_status": 502, "error": AWKWARD, "latency_ms": 1234, "ttft_ms": 56, "prompt_tokens": 10,
        "completion_tokens": 0, "cost_usd": Decimal("0.00012345"), "finish_reason": "tool_calls",
        "task_type": "code", "tools_used": ["search", AWKWARD], "attempts": 3, "fallback_used": True,
        "prompt": AWKWARD, "content": "", "rating": 0.25, "feedback_type": "implicit",
        "feedback_at": created + timedelta(seconds=5),
        "metadata_": {"task_id": "t", "decision": {"scores": [0.5, None], "nested": {"k": AWKWARD}}},
        "created_at": created,
    }  # fmt: skip
    sparse = {"id": str(uuid.uuid4()), "tenant_id": "acme", "dialect": "openai", "endpoint": "chat",
              "status": "ok", "http_status": 200, "created_at": created}  # fmt: skip
    submitted = full | {"id": str(uuid.uuid4()), "cost_usd": 0.00012345}
    submitted.pop("rating")  # absent keys take the column default
    journaled = orjson.loads(encode([full | {"id": str(uuid.uuid4())}]))
    assert isinstance(journaled["created_at"], str) and isinstance(journaled["cost_usd"], str)
    decided = full | {"id": str(uuid.uuid4())}  # the gateway's decision: serialised once, as a Fragment
    decided["metadata_"] = {"decision": orjson.Fragment(orjson.dumps({"chosen": "sim/gpt-4o", "k": AWKWARD}))}
    # 226 rows: slices of 100, 100 and 26 rows; statements of 20, 5 and 1 rows
    many = [full | {"id": str(uuid.uuid4())} for _ in range(221)]
    return [full, sparse, submitted, journaled, decided, *many]


async def stored(path: Path, bound: bool, data: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    if bound:
        inserter = RowInserter(sessions)
        prepared = [inserter.prepare(record) for record in data]
        await inserter.insert(prepared)
        await inserter.insert(prepared[:3])  # a replayed slice is stored once
        await inserter.close()
    else:
        async with sessions.begin() as session:
            connection = await session.connection()
            await connection.execute(_statement("sqlite"), [to_row(record) for record in data])
    async with sessions() as session:
        first = await session.get(Message, data[0]["id"])
    await engine.dispose()
    assert first is not None
    assert first.cost_usd == Decimal("0.00012345") and first.stream is True and first.error == AWKWARD
    assert first.tools_used == ["search", AWKWARD] and first.metadata_["decision"]["nested"] == {"k": AWKWARD}
    assert first.feedback_at is not None and first.feedback_at - first.created_at == timedelta(seconds=5)
    with contextlib.closing(sqlite3.connect(path)) as raw:
        return raw.execute(select(Message.__table__).order_by("id").compile().string).fetchall()


async def test_sqlite_rows_are_stored_exactly_as_sqlalchemy_core_stores_them(tmp_path: Path) -> None:
    data = records()
    ours = await stored(tmp_path / "bound.db", True, data)
    core = await stored(tmp_path / "core.db", False, data)
    assert len(ours) == len(data) == 226
    assert ours == core  # byte for byte: column order, text, JSON, datetimes, booleans, decimals
