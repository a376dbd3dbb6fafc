"""A record the database would refuse is stored in a cleaned form, in the same batch as its
neighbours: never dropped, never a reason to insert the batch row by row.

Before, such a record failed its batch; the batch was retried one row per transaction, and the
record itself went to a local ``rejected.jsonl``, out of every report."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.test_record_writer import (  # noqa: F401
    STEADY_DB_S,
    _wait_until,
    assert_exactly_once,
    engine,
    make_record,
)
from turnout.records import RecordWriter
from turnout.store.db import make_sessionmaker
from turnout.store.messages import Message

NUL = "\x00"
REPLACED = "\ufffd"  # what a NUL (or a lone surrogate) becomes


def refused_records() -> list[dict[str, Any]]:
    """Values PostgreSQL refuses (and some SQLite refuses too): each used to lose its record."""
    decision = orjson.Fragment(orjson.dumps({"why": f"picked{NUL}", "scores": [0.5]}))
    return [
        make_record(user_id=f"alice{NUL}", conversation_id="c" * 100),
        make_record(tenant_id=None, finish_reason="f" * 300, task_type=f"code{NUL}"),
        make_record(tools_used=[f"search{NUL}"], metadata_={"task_id": f"t{NUL}", "decision": decision}),
        make_record(prompt_tokens=2**40, completion_tokens="5", cost_usd=1e20, latency_ms=-(2**33)),
        make_record(
            error=f"e{NUL}" * 3000, prompt=f"p{NUL}", content=f"c{NUL}", stream="yes", created_at="never"
        ),
        make_record(
            metadata_={1: {"set", "of", "words"}}, tools_used="search", attempts=True, rating=float("nan")
        ),
    ]


async def test_refused_values_are_stored_cleaned_with_their_batch(
    engine: AsyncEngine,  # noqa: F811
    db_url: str,
    tmp_path: Path,
) -> None:
    writer = RecordWriter(
        make_sessionmaker(engine),
        tmp_path / "journal",
        batch_size=100,
        flush_interval_s=0.05,
        db_timeout_s=STEADY_DB_S,
    )
    await writer.start()
    good = [make_record() for _ in range(40)]
    bad = refused_records()
    batch = [*good[:20], *bad, *good[20:]]
    for record in batch:
        writer.submit(record)
    await writer.stop()

    await assert_exactly_once(engine, [record["id"] for record in batch])
    assert writer.sanitised == len(bad) and writer.refused == 0 and writer.left_to_journal == 0
    async with make_sessionmaker(engine)() as session:
        rows = {row.id: row for row in await session.scalars(select(Message))}
    first, second, third, fourth, fifth, sixth = (rows[record["id"]] for record in bad)
    assert first.user_id == f"alice{REPLACED}" and first.conversation_id == "c" * 64
    assert sorted(first.metadata_["sanitised"]) == ["conversation_id", "user_id"]
    assert (
        second.tenant_id == "unknown"
        and second.finish_reason == "f" * 40
        and second.task_type == f"code{REPLACED}"
    )
    assert third.tools_used == [f"search{REPLACED}"] and third.metadata_["task_id"] == f"t{REPLACED}"
    assert third.metadata_["decision"] == {"why": f"picked{REPLACED}", "scores": [0.5]}
    assert (fourth.prompt_tokens, fourth.completion_tokens, fourth.cost_usd, fourth.latency_ms) == (
        None,
        5,
        None,
        None,
    )
    assert fifth.error == f"e{REPLACED}" * 500 and fifth.prompt == f"p{REPLACED}" and fifth.stream is False
    assert fifth.created_at is not None and "created_at" in fifth.metadata_["sanitised"]
    assert sorted(sixth.metadata_["1"]) == ["of", "set", "words"]
    assert sixth.tools_used == ["search"] and sixth.attempts == 1 and sixth.rating is None
    for record in good:  # the neighbours are stored as they were
        row = rows[record["id"]]
        assert (
            row.user_id == "alice"
            and row.cost_usd == Decimal("0.00012345")
            and "sanitised" not in row.metadata_
        )

    if db_url.startswith("postgresql"):  # one transaction stored all 46 rows: no row-by-row retry
        async with engine.connect() as connection:
            transactions = await connection.scalar(text("SELECT count(DISTINCT xmin::text) FROM messages"))
        assert transactions == 1
