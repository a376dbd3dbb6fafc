"""A live Turnout (uvicorn, real sockets) on the test's database (SQLite and PostgreSQL, through
``db_url``) in front of the simulator, with a provider, an agent and its key made through the API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.live_server import serve
from turnout.app import create_app
from turnout.container import Container
from turnout.simulator import Simulator, SimulatorConfig

SIM_MODELS = ["gpt-4o-mini", "text-embedding-3-small"]


@dataclass
class EdgeEnv:
    url: str
    http: httpx.AsyncClient
    sim: Simulator
    container: Container
    admin: dict[str, str]  # platform admin
    tenant_admin: dict[str, str]
    key: str  # agent "bot" of tenant "acme", allowed every "sim" model

    @property
    def agent(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def ok(resp: httpx.Response) -> Any:
    assert resp.status_code < 300, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json()


@pytest.fixture
async def edge(container: Container, request: pytest.FixtureRequest) -> AsyncIterator[EdgeEnv]:
    """The environment; a test module's ``SIM_MODELS`` list replaces the simulator's models."""
    sim = Simulator(SimulatorConfig(models=list(getattr(request.module, "SIM_MODELS", SIM_MODELS))))
    sim_url = await sim.start()
    try:
        async with (
            serve(create_app(container=container)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            admin = {"Authorization": f"Bearer {container.jwt.mint('root', 'platform', ['platform_admin'])}"}
            tenant_admin = {"Authorization": f"Bearer {container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
            provider = {
                "id": "sim",
                "display_name": "Sim",
                "provider_type": "openai",
                "api_base": f"{sim_url}/v1",
            }
            await ok(await http.post("/api/v2/admin/providers", json=provider, headers=admin))
            await ok(await http.post("/api/v2/admin/providers/sim/sync", headers=admin))
            await ok(
                await http.post("/api/v2/agents", json={"id": "bot", "name": "Bot"}, headers=tenant_admin)
            )
            key = await ok(await http.post("/api/v2/agents/bot/keys", json={}, headers=tenant_admin))
            selection = {"bulk_filter": {"provider": "sim"}}
            await ok(await http.post("/api/v2/agents/bot/models", json=selection, headers=tenant_admin))
            await container.snapshots.reload()
            sim.reset_stats()
            yield EdgeEnv(url, http, sim, container, admin, tenant_admin, key["key"])
    finally:
        await sim.stop()


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class RawConnection:
    """One keep-alive HTTP/1.1 connection that sends bytes exactly as given (NUL, bad UTF-8, odd
    headers), so a test sees what the server does with them and whether it keeps the connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
        body: bytes | None = None,
        timeout_s: float = 10,
        *,
        chunked: bool = False,
    ) -> RawAnswer | None:
        """The answer, or ``None`` when the server closed the connection without one."""
        lines = [method.encode() + b" " + target + b" HTTP/1.1", b"host: turnout.test"]
        lines += [name + b": " + value for name, value in headers]
        if chunked:
            lines.append(b"transfer-encoding: chunked")
            body = (
                (f"{len(body or b''):x}\r\n".encode() + (body or b"") + b"\r\n0\r\n\r\n")
                if body
                else b"0\r\n\r\n"
            )
        elif body is not None:
            lines.append(b"content-length: " + str(len(body)).encode())
        self.writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
        try:
            return await asyncio.wait_for(self._answer(), timeout_s)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def _answer(self) -> RawAnswer:
        head = await self.reader.readuntil(b"\r\n\r\n")
        while head.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue): the real one follows
            head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].split(b"\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if headers.get("transfer-encoding") == "chunked":  # a streamed answer
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawAnswer(int(status_line.split(b" ")[1]), headers, body)

    @property
    def closed_by_server(self) -> bool:
        return self.reader.at_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
