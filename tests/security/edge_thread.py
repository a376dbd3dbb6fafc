"""A live Turnout in a background thread (its own event loop), for synchronous tests such as
schemathesis' parametrized ones: real uvicorn with the production protocol, the simulator as its
upstream, a provider, an agent and its key made through the API (``edge_serve.setup_chat``)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.live_server import serve
from tests.security.edge_serve import setup_chat
from turnout.app import create_app
from turnout.auth.jwt_tokens import JwtCodec
from turnout.config import Settings
from turnout.container import Container
from turnout.simulator import Simulator, SimulatorConfig
from turnout.store.migrate import upgrade


@dataclass
class ThreadedGateway:
    url: str
    key: str  # agent "bot" of tenant "acme", allowed every simulator model
    jwt: JwtCodec  # mints the admins' tokens


@contextmanager
def threaded_gateway(tmp: Path) -> Iterator[ThreadedGateway]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp}/gw.db",
        data_dir=tmp / "data",
        jwt_secret=secrets.token_hex(32),
        master_key=secrets.token_hex(32),
        task_classifier="off",
        _env_file=None,  # type: ignore[call-arg]
    )
    ready: dict[str, str] = {}
    started, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        container = Container.build(settings)
        await upgrade(container.engine)
        sim = Simulator(SimulatorConfig())
        ready["sim"] = await sim.start()
        try:
            async with serve(create_app(container=container)) as url:
                ready["url"] = url
                started.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)
        finally:
            await sim.stop()
            await container.aclose()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the waiting test
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="turnout-gateway", daemon=True)
    thread.start()
    try:
        started.wait(60)
        if failure:
            raise failure[0]
        jwt = JwtCodec(settings.jwt_secret_value)
        yield ThreadedGateway(ready["url"], setup_chat(ready["url"], jwt, ready["sim"]), jwt)
    finally:
        stop.set()
        thread.join(30)
