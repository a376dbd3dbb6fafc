"""Async engine and session factory for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from turnout.database_url import asyncpg_connect_args


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # checkpoints run in the background (store/sqlite/checkpoint.py), not inside a commit; 10,000 pages
    # (~40 MB of WAL) is only the cap for when they do not run
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def json_dumps(value: Any) -> str:
    """JSON columns are written with orjson (several times faster than ``json`` on big syncs)."""
    return orjson.dumps(value, default=_json_default).decode()


def _engine_options(url: str) -> dict[str, Any]:
    """Engine keyword arguments shared by the async engine and the blocking one."""
    kwargs: dict[str, Any] = {
        "json_serializer": json_dumps,
        "json_deserializer": orjson.loads,
        "hide_parameters": True,  # errors (and so logged tracebacks) never carry prompts, names, ids
    }
    if url.startswith("postgresql"):
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    return kwargs


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of an SQLite file (the embedded default lives in the per-user data dir)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        try:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # not creatable: connecting will say why, where it is reported
            pass


def make_engine(url: str) -> AsyncEngine:
    """Create the engine; SQLite gets WAL mode and foreign keys, and a PostgreSQL URL's libpq
    parameters become asyncpg's connect arguments (``asyncpg_connect_args``)."""
    ensure_sqlite_dir(url)
    url, connect_args = asyncpg_connect_args(url)
    engine = create_async_engine(url, connect_args=connect_args, **_engine_options(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def make_blocking_engine(url: str) -> Engine:
    """A blocking engine with the same options and SQLite pragmas (for ``store/sqlite/one_hop.py``)."""
    ensure_sqlite_dir(url)
    engine = create_engine(url, **_engine_options(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
