"""The whole ORM schema (every table module registered) builds straight from the models with
``create_all``, as tests and tools do without migrations, and the outbox's partial indexes keep
their predicates. It once failed with a bare mapped_column as an index's WHERE clause, but only in
processes that had imported the events tables first."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from turnout.store.db import make_engine
from turnout.store.schema import Base


async def test_every_table_builds_from_the_models_with_its_partial_indexes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/schema.db")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            listed = await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
            rows = listed.all()
    finally:
        await engine.dispose()
    sql = {name: statement for name, statement in rows}
    assert {"events", "webhooks", "webhook_deliveries", "messages"} <= set(Base.metadata.tables)
    assert sql["ix_events_nats_pending"].endswith("WHERE nats_pending")
    assert sql["ix_events_hooks_pending"].endswith("WHERE hooks_pending")
    assert sql["ix_message_event_pending"].endswith("WHERE event_pending")
