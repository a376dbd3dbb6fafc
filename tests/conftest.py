"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, the app, tokens."""

from __future__ import annotations

import asyncio
import io
import secrets
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import create_migrated_pg_database, create_pg_database, drop_pg_database
from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.store.db import make_engine
from turnout.store.migrate import upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database at the newest migration; every test using it runs on SQLite and on PostgreSQL.
    It is a copy of one migrated once per session (``upgrade`` on it is a no-op): migrating each
    test's database took 0.2 s apiece, minutes over the suite."""
    if request.param == "sqlite":
        target = tmp_path / "turnout.db"
        shutil.copyfile(await _sqlite_template(tmp_path_factory), target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url, name = await create_migrated_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (for the tests of the migrations themselves), on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/turnout.db"
        return
    url, name = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(name)


_SQLITE_TEMPLATE: list[Path] = []  # the session's migrated SQLite file, made on first use


async def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _SQLITE_TEMPLATE:
        path = tmp_path_factory.mktemp("template") / "turnout.db"
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()  # checkpointed: the file alone holds the schema
        _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own database, data dir, keys."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        jwt_secret=secrets.token_hex(32),
        master_key=secrets.token_hex(32),
        log_json=True,
        task_classifier="off",  # loading the word vectors takes ~0.5 s: only tests that need it turn it on
        _env_file=None,  # type: ignore[call-arg]
    )


CLOSE_WARN_S = 10.0  # a teardown this slow dumps every task's stack (a rare hang was seen once)


def task_stacks() -> str:
    """Every pending asyncio task of the running loop, with its stack."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}: {task.get_coro()!r}", file=out)
        task.print_stack(file=out)
    return out.getvalue()


async def close_watched(closing: Coroutine[Any, Any, None], what: str) -> None:
    """Await ``closing``; if it takes over CLOSE_WARN_S, print all task stacks, then fail after 60 s."""
    task = asyncio.ensure_future(closing)
    done, _ = await asyncio.wait({task}, timeout=CLOSE_WARN_S)
    if not done:
        print(f"\n{what} still closing after {CLOSE_WARN_S:g} s; tasks:\n{task_stacks()}", file=sys.stderr)
        done, _ = await asyncio.wait({task}, timeout=60.0)
        if not done:
            stacks = task_stacks()
            task.cancel()
            pytest.fail(f"{what} did not close within {CLOSE_WARN_S + 60:g} s; tasks:\n{stacks}")
    task.result()


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    """A container on a migrated database."""
    built = Container.build(settings)
    await upgrade(built.engine)
    await built.start()
    try:
        yield built
    finally:
        await close_watched(built.aclose(), "the container")


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://turnout.test") as http:
        yield http


@pytest.fixture
def make_token(container: Container) -> Callable[..., str]:
    """Mint tokens for any subject, tenant and roles."""

    def mint(
        sub: str = "alice", tenant: str = "t1", roles: tuple[str, ...] = ("platform_admin",), **kw: object
    ) -> str:
        return container.jwt.mint(sub, tenant, roles, **kw)  # type: ignore[arg-type]

    return mint


@pytest.fixture
def admin(make_token: Callable[..., str]) -> dict[str, str]:
    """Headers of a platform admin."""
    return {"Authorization": f"Bearer {make_token()}"}
