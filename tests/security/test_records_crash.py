"""``kill -9`` under load loses no answered call's record: a real ``turnout serve`` is killed while
answering a mix of calls (streamed and not, successes and error answers, and a trickle of requests
with metadata the database could not store), restarted on the same database and journal, and every
call whose answer reached the client has its Message row.

Before, the records of the last ~0.2 s lived only in memory (163 of 12,920 lost; 97.7% with a
trickle of records the database refused, which made the writer insert row by row)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.gateway_env import OPENAI_MODEL, SIM_KEY, provision
from tests.live_server import free_port
from turnout.auth.jwt_tokens import JwtCodec
from turnout.simulator import Simulator, SimulatorConfig
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.messages import Message

TURNOUT = str(Path(sys.executable).with_name("turnout"))
HELLO = [{"role": "user", "content": "hello"}]
CLIENTS = 24
MIN_ANSWERS = 300  # answers before the kill


@dataclass
class Answers:
    """What the load's clients saw: ids of answered calls (each must have a record), and refusals."""

    ids: list[str] = field(default_factory=list)
    refused: int = 0  # 400s for bad metadata: never reached the record step
    streams: int = 0
    errors: int = 0  # error answers that reached the record step (they carry the message id)


@pytest.fixture
async def sim() -> AsyncIterator[str]:
    simulator = Simulator(SimulatorConfig(api_key=SIM_KEY, tokens_per_second=400))
    url = await simulator.start()
    try:
        yield url
    finally:
        await simulator.stop()


def _env(db_url: str, tmp_path: Path, workers: int) -> dict[str, str]:
    return {
        **os.environ,
        "TURNOUT_DATABASE_URL": db_url,
        "TURNOUT_DATA_DIR": str(tmp_path / "data"),
        "TURNOUT_JWT_SECRET": secrets.token_hex(32),
        "TURNOUT_MASTER_KEY": secrets.token_hex(32),
        "TURNOUT_TASK_CLASSIFIER": "off",
        "TURNOUT_LOG_LEVEL": "WARNING",
        "TURNOUT_WORKERS": str(workers),
        "TURNOUT_SNAPSHOT_INTERVAL_S": "0.25",  # workers learn the test's new key quickly
    }


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    url: str


async def _serve(env: dict[str, str], tmp_path: Path, name: str) -> Served:
    """``turnout serve`` in a session of its own (so that ``killpg`` reaches every worker)."""
    port = free_port()
    with (tmp_path / f"{name}.log").open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            TURNOUT, "serve", "--port", str(port), env=env, cwd=tmp_path,
            stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # two workers on two busy cores take a while
    async with httpx.AsyncClient(base_url=url) as http:
        while True:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return Served(proc, url)
            except httpx.TransportError:
                pass
            if proc.returncode is not None or time.monotonic() > deadline:
                await _kill(Served(proc, url), signal.SIGKILL)
                log = (tmp_path / f"{name}.log").read_text()[-3000:]
                raise AssertionError(f"turnout serve did not start:\n{log}")
            await asyncio.sleep(0.2)


async def _kill(served: Served, sig: int) -> None:
    """``sig`` to the server's whole process group; whatever is left of it is killed after."""
    try:
        os.killpg(served.proc.pid, sig)
        await asyncio.wait_for(served.proc.wait(), 30)
    except ProcessLookupError:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(served.proc.pid, signal.SIGKILL)  # workers outliving their master


async def _until_every_worker_knows(url: str, key: str) -> None:
    """Other workers learn the new key at their next snapshot refresh: wait until 12 calls in a
    row, each on a new connection (so that any worker may take it), are answered."""
    body: Any = {"model": OPENAI_MODEL, "messages": HELLO}
    deadline, in_a_row = time.monotonic() + 60, 0
    while in_a_row < 12:
        assert time.monotonic() < deadline, "the API key never reached every worker"
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            resp = await http.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
        in_a_row = in_a_row + 1 if resp.status_code == 200 else 0
        if not in_a_row:
            await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # eight refresh intervals more: a worker the calls never reached has too


async def _one_call(http: httpx.AsyncClient, key: str, kind: int, answers: Answers) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    if kind == 0:  # metadata the database cannot store: refused before anything is called
        body = {"model": OPENAI_MODEL, "messages": HELLO, "metadata": {"conversation_id": "c\x00" * 40}}
        resp = await http.post("/v1/chat/completions", json=body, headers=headers)
        assert resp.status_code == 400 and "x-turnout-message-id" not in resp.headers, resp.text
        answers.refused += 1
    elif kind in (1, 2, 3):
        body = {"model": OPENAI_MODEL, "messages": HELLO, "stream": True}
        async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
            assert resp.status_code == 200
            text = "".join([part async for part in resp.aiter_text()])
        if text.rstrip().endswith("data: [DONE]"):  # only a completed stream was answered
            answers.ids.append(resp.headers["x-turnout-message-id"])
            answers.streams += 1
    elif kind == 4:  # an error answer from the gateway's own record step
        body = {"model": "oai/no-such-model", "messages": HELLO}
        resp = await http.post("/v1/chat/completions", json=body, headers=headers)
        assert resp.status_code >= 400, resp.text
        answers.ids.append(resp.headers["x-turnout-message-id"])
        answers.errors += 1
    else:
        body = {"model": OPENAI_MODEL, "messages": HELLO, "metadata": {"conversation_id": "conv-1"}}
        resp = await http.post("/v1/chat/completions", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        answers.ids.append(resp.headers["x-turnout-message-id"])


async def _load(url: str, key: str, trickle: bool, answers: Answers, stop: asyncio.Event) -> None:
    kinds = itertools.count()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            kind = next(kinds) % 10
            if kind == 0 and not trickle:
                kind = 5
            try:
                await _one_call(http, key, kind, answers)
            except (httpx.TransportError, KeyError):
                await asyncio.sleep(0.01)  # the server is gone: this call was never answered

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))


async def _stored(db_url: str, ids: list[str]) -> set[str]:
    engine = make_engine(db_url)
    try:
        found: set[str] = set()
        async with make_sessionmaker(engine)() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                found.update(await session.scalars(select(Message.id).where(Message.id.in_(chunk))))
        return found
    finally:
        await engine.dispose()


# plain calls, with a trickle of calls whose metadata is refused, across two workers (the case that
# lost 97.7% before); a single worker without the trickle is the same path with less in flight
@pytest.mark.parametrize(("trickle", "workers"), [(True, 2)], ids=["trickle-2-workers"])
async def test_kill_9_under_load_loses_no_answered_record(
    db_url: str, tmp_path: Path, sim: str, trickle: bool, workers: int
) -> None:
    env = _env(db_url, tmp_path, workers)
    codec = JwtCodec(env["TURNOUT_JWT_SECRET"])
    served = await _serve(env, tmp_path, "first")
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            _, _, key = await provision(http, lambda sub, tenant, roles: codec.mint(sub, tenant, roles), sim)
        await _until_every_worker_knows(served.url, key)
        answers, stop = Answers(), asyncio.Event()
        load = asyncio.create_task(_load(served.url, key, trickle, answers, stop))
        deadline = time.monotonic() + 60
        while len(answers.ids) < MIN_ANSWERS and time.monotonic() < deadline and not load.done():
            await asyncio.sleep(0.05)
        await _kill(served, signal.SIGKILL)  # mid-load: calls in flight, records in every stage
        stop.set()
        await load
    finally:
        await _kill(served, signal.SIGKILL)
    assert len(answers.ids) >= MIN_ANSWERS and answers.streams and answers.errors
    assert answers.refused or not trickle

    restarted = await _serve(env, tmp_path, "second")  # replays what the killed process journaled
    try:
        missing = set(answers.ids)
        deadline = time.monotonic() + 30
        while missing and time.monotonic() < deadline:
            missing -= await _stored(db_url, sorted(missing))
            if missing:
                await asyncio.sleep(0.25)
    finally:
        await _kill(restarted, signal.SIGTERM)
    assert not missing, f"{len(missing)} of {len(answers.ids)} answered calls have no record"
    print(  # the figure the security issue asks for (shown with pytest -s)
        f"kill -9 under load: {len(answers.ids)} answered ({answers.streams} streams, "
        f"{answers.errors} errors, {answers.refused} refused), {len(missing)} without a record"
    )
