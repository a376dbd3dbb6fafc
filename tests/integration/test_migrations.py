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


async def test_replicas_starting_together_migrate_once(empty_db_url: str, tmp_path: Any) -> None:
    """Two ``turnout migrate`` at once on an empty database (replicas deployed together): both
    succeed and the schema is at head (on PostgreSQL one died creating alembic_version)."""
    import asyncio
    import os
    import sys
    from pathlib import Path

    from turnout.store.migrate import head_revision

    turnout = str(Path(sys.executable).with_name("turnout"))
    env = {**os.environ, "TURNOUT_DATABASE_URL": empty_db_url, "TURNOUT_DATA_DIR": str(tmp_path / "data")}
    procs = [
        await asyncio.create_subprocess_exec(
            turnout, "migrate", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outs = [(await asyncio.wait_for(p.communicate(), 120))[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    engine = make_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        await engine.dispose()
    assert version == head_revision()
