"""A PostgreSQL URL copied from psql, Heroku or a Helm chart, with libpq's parameters, connects: the
engine, the migrations and the PostgreSQL change bus each died at their first connection with
asyncpg's "connect() got an unexpected keyword argument 'connect_timeout'" (the bus with PostgreSQL's
'unrecognized configuration parameter "connect_timeout"', and with 'parameter "ssl" cannot be changed
now' for any ``sslmode``)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.cluster_env import until
from tests.services import create_pg_database, drop_pg_database
from turnout.cluster.pg_bus import PostgresBus, asyncpg_connect_kwargs
from turnout.config import Settings
from turnout.store.db import make_engine
from turnout.store.migrate import upgrade_sync

LIBPQ_QUERY = (
    "?sslmode=disable&connect_timeout=10&application_name=turnout-test"
    "&options=-c%20statement_timeout%3D5000&target_session_attrs=read-write&statement_cache_size=0"
)

pytestmark = pytest.mark.postgres


def _settings_url(url: str) -> str:
    plain = url.replace("+asyncpg", "") + LIBPQ_QUERY  # as psql and libpq write it
    return Settings(database_url=plain, _env_file=None).database_url  # type: ignore[call-arg]


async def test_the_engine_connects_with_libpqs_parameters_and_the_server_gets_them() -> None:
    url, name = await create_pg_database()
    engine = make_engine(_settings_url(url))
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT current_setting('application_name'), current_setting('statement_timeout')")
                )
            ).one()
        assert tuple(row) == ("turnout-test", "5s")
    finally:
        await engine.dispose()
        await drop_pg_database(name)


async def test_migrations_run_on_a_url_with_libpqs_parameters() -> None:
    """``turnout migrate``'s path (Alembic's own engine; its config also took the URL's ``%`` for
    interpolation and refused it)."""
    url, name = await create_pg_database()
    settings_url = _settings_url(url)
    engine = make_engine(settings_url)
    try:
        await asyncio.to_thread(upgrade_sync, settings_url)  # blocking, as the CLI calls it
        async with engine.connect() as conn:
            revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        assert revision
    finally:
        await engine.dispose()
        await drop_pg_database(name)


async def test_the_postgres_change_bus_hears_a_change_on_a_url_with_libpqs_parameters() -> None:
    url, name = await create_pg_database()
    kwargs = asyncpg_connect_kwargs(_settings_url(url))
    sender, listener = PostgresBus(kwargs, "changes"), PostgresBus(kwargs, "changes")
    heard: list[dict[str, object]] = []
    listener.subscribe(heard.append)
    await sender.start()
    await listener.start()
    try:
        sender.publish({"type": "ping", "n": 1})
        await until(lambda: {"type": "ping", "n": 1} in heard)
    finally:
        await listener.stop()
        await sender.stop()
        await drop_pg_database(name)
