"""Apply Alembic migrations programmatically (used by the CLI, the app and the tests)."""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.store.db import ensure_sqlite_dir

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's options interpolate %: a URL's percent-escapes (a password's %40, options' %3D)
    # were refused as "invalid interpolation syntax"; %% reads back as %
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest migration's revision id: every migration's id is its file name's number (a test
    holds the project to that), so the head is known without loading Alembic (~1 s of imports)."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))


def _sqlite_at_head(url: str) -> bool:
    """Whether an SQLite file is already migrated to the head (False when in doubt)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or not Path(parsed.database).exists():
        return False
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(parsed.database)) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row is not None and row[0] == head_revision()
    return False


def upgrade_sync(url: str, revision: str = "head") -> list[str]:
    """Upgrade the database at ``url`` (call outside a running event loop); returns the revisions
    applied, oldest first (none: it was already there). The CLI calls this before every command:
    an embedded database already at the head is recognised without Alembic."""
    if revision == "head" and _sqlite_at_head(url):
        return []
    from alembic import command

    ensure_sqlite_dir(url)
    cfg = alembic_config(url)
    applied: list[str] = []
    cfg.attributes["applied"] = applied  # filled by migrations/env.py as each step is applied
    with _sqlite_turn(url):  # (PostgreSQL's turn is an advisory lock in migrations/env.py)
        command.upgrade(cfg, revision)
    return applied


@contextlib.contextmanager
def _sqlite_turn(url: str) -> Iterator[None]:
    """Processes migrating one SQLite file take turns (a lock file beside it): two ``turnout serve``
    started together both ran the batch migrations, and one failed on the other's temporary table."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        yield
        return
    with open(f"{parsed.database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade through an existing async engine."""
    from alembic import command

    await _migrate(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Downgrade through an existing async engine (used by the migration tests)."""
    from alembic import command

    await _migrate(engine, command.downgrade, revision)


async def _migrate(engine: AsyncEngine, step: Callable[[Config, str], None], revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))

    def run(connection: object) -> None:
        cfg.attributes["connection"] = connection
        step(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
