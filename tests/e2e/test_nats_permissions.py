"""The README's NATS authorization block is enough, and no more is asked: ``nats-server -js`` runs
with it verbatim, the gateway connects as its user, publishes events, takes a cancel by name from
a command caller (passed on through ``turnout.internal.cancel``) and answers it, and a reader of the
stream reads the events. The user's password in ``TURNOUT_NATS_URL`` never reaches a log line."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
from nats.js.api import ConsumerConfig, DeliverPolicy
from structlog.testing import capture_logs

from tests.fixtures.nats_server import NatsServer, nats_server  # noqa: F401
from tests.gateway_env import OPENAI_MODEL, gateway

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- docs-test: tests/e2e/test_nats_permissions.py"
CONF = re.compile(r"```conf\n(?P<conf>.*?)^```$", re.M | re.S)


def readme_conf() -> str:
    text = (ROOT / "README.md").read_text()
    match = CONF.search(text, text.index(MARKER))
    assert match is not None, "the README's NATS configuration block is gone"
    return match.group("conf")


async def test_the_readmes_nats_users_are_enough_and_the_password_stays_out_of_logs(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    gateway_pw, ops_pw = secrets.token_hex(12), secrets.token_hex(12)
    config = tmp_path / "nats.conf"
    config.write_text(readme_conf())
    nats_server.config = config
    nats_server.environ = {"TURNOUT_NATS_PASSWORD": gateway_pw, "OPS_NATS_PASSWORD": ops_pw}
    nats_server.probe_user = ("ops", ops_pw)
    await nats_server.start()
    port = nats_server.port
    ops_url = f"nats://ops:{ops_pw}@127.0.0.1:{port}"
    async with gateway(
        tmp_path,
        nats_url=f"nats://turnout:{gateway_pw}@127.0.0.1:{port}",
        nats_stream="TURNOUT_EVENTS",
        first_byte_timeout_s=20.0,
    ) as gw:
        with capture_logs() as logs:  # once the gateway has configured its logging
            ops = await nats.connect(ops_url)
            try:
                admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
                gw.sim.inject("stall:10", count=1)
                async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
                    pending = asyncio.ensure_future(
                        http.post(
                            "/v1/chat/completions",
                            json={"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]},
                            headers={"Authorization": f"Bearer {gw.key}", "X-Client-Request-Id": "report-7"},
                        )
                    )
                    for _ in range(100):
                        if gw.container.gateway.inflight:
                            break
                        await asyncio.sleep(0.02)
                    (held,) = list(gw.container.gateway.inflight)
                    reply = await _cancel(ops, {"client_request_id": "report-7"}, admin)
                    assert reply["ok"] is True and reply["result"]["request_ids"] == [held], reply
                    answer = await pending
                assert answer.status_code == 409, answer.text
                kinds = await _stream_types(ops, want="model.request.cancelled")
                assert "model.request.cancelled" in kinds, kinds
            finally:
                await ops.close()
            nats_server.kill()  # the gateway logs the outage, naming the server
            for _ in range(100):
                if any(e["event"] == "events.nats_disconnected" for e in logs):
                    break
                await asyncio.sleep(0.05)
    outage = [e for e in logs if e["event"] == "events.nats_disconnected"]
    assert outage and outage[0]["url"] == f"nats://turnout:***@127.0.0.1:{port}", outage
    assert gateway_pw not in repr(logs), "the NATS password reached a log line"
    denied = [e for e in logs if "permission" in repr(e).lower()]
    assert denied == [], denied


async def _cancel(nc: nats.NATS, body: dict[str, Any], token: str) -> dict[str, Any]:
    """The command, retried while the gateway's subscriptions are not up yet (for 20 s)."""
    for _ in range(20):
        with contextlib.suppress(nats.errors.NoRespondersError, nats.errors.TimeoutError):
            msg = await nc.request(
                "turnout.commands.model.request.cancel",
                orjson.dumps(body),
                timeout=1,
                headers={"Authorization": f"Bearer {token}"},
            )
            reply: dict[str, Any] = orjson.loads(msg.data)
            return reply
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway never answered the command")


async def _stream_types(nc: nats.NATS, want: str, timeout_s: float = 15.0) -> list[str]:
    """The types of the stream's events, read as the README's reader, until ``want`` is among them."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        "turnout.events.>", stream="TURNOUT_EVENTS", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    kinds: list[str] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while want not in kinds and asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(nats.errors.TimeoutError):
            for msg in await sub.fetch(100, timeout=0.5):
                kinds.append(orjson.loads(msg.data)["type"])
                await msg.ack()
    return kinds
