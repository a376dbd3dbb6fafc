"""Every migration goes up, down to nothing and up again on SQLite and PostgreSQL, and the migrated
schema matches the ORM models (no drift for a later autogenerate to find)."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from turnout.store.db import make_engine
from turnout.store.migrate import alembic_config
from turnout.store.models import Base


def _config(url: str, connection: Connection) -> Any:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    return cfg


async def test_migrations_go_up_down_and_up_without_drift(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        for target in ("head", "base", "head"):
            async with engine.begin() as conn:
                step = command.upgrade if target == "head" else command.downgrade
                await conn.run_sync(lambda c, s=step, t=target: s(_config(empty_db_url, c), t))  # type: ignore[misc]
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        # PostgreSQL's trigram search indexes exist only in the migrations (models stay portable)
        diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name.endswith("_trgm"))]
        assert diff == [], f"the migrated schema differs from the models: {diff}"
    finally:
        await engine.dispose()


def test_every_migration_is_named_by_its_revision() -> None:
    """``head_revision`` reads the head from file names (the CLI skips Alembic when at head)."""
    from turnout.store.migrate import MIGRATIONS_DIR, head_revision

    files = sorted((MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
    for path in files:
        assert f'revision = "{path.name.split("_", 1)[0]}"' in path.read_text(), path.name
    assert head_revision() == files[-1].name.split("_", 1)[0]
