"""The admin commands' way to the configured database: they use it directly, as the gateway does,
so they work with the gateway stopped; the database is migrated first, and the command's engine is
disposed of when its work is done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.config import Settings
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.migrate import upgrade_sync

T = TypeVar("T")


def on_database(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """``work`` on the configured database, migrated first; what it returns."""
    settings = Settings()
    upgrade_sync(settings.database_url)

    async def main() -> T:
        engine = make_engine(settings.database_url)
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def table_console() -> Console:
    """The console a command prints its tables on: piped or redirected, every column whole, however
    wide (a terminal's width cut them into unreadable stubs)."""
    console = Console()
    return console if console.is_terminal else Console(width=10_000)
