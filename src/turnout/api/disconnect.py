"""Cancelling a request's work when its client goes away, so its upstream call is cancelled too.

The watcher reads ``receive()`` until ``http.disconnect``; it is started lazily, only for work that
takes over ``WATCH_AFTER_S`` (fast answers never start a task for it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

WATCH_AFTER_S = 0.05  # answers faster than this never start a disconnect watcher


class DisconnectWatch:
    """Cancels ``task`` (and so its upstream call) when the client goes away; started lazily."""

    __slots__ = ("gone", "request", "task", "watcher")

    def __init__(self, request: Request, task: asyncio.Task[Any]) -> None:
        self.request, self.task = request, task
        self.gone = False
        self.watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self.request.receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self.task.cancel()
