"""Webhooks as a tenant's receiver sees them: a live gateway delivering to local aiohttp receivers
that verify every Standard Webhooks signature with the secret the create answer showed, and record
what arrives. Events are staged in the outbox directly (``stage_event``), as the code that fills
it does in the transaction of the change that caused them.

Covered: CRUD and tenant isolation (neither the API nor the deliveries cross tenants), signatures,
a receiver that fails for a while and recovers (every event arrives, attempts counted), one that
never recovers (dead letters, a retry by hand), refused URLs, the test action, and the secret kept
out of answers and the database. One gateway serves the module, with fast retries; each test uses
its own tenants."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from structlog.testing import capture_logs

from tests.gateway_env import GatewayEnv, gateway, open_gateway
from turnout.config import Settings
from turnout.events.webhook_delivery import WebhookDispatcher, sign
from turnout.secrets import SecretNotFound
from turnout.store.events import stage_event

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOOKS = "/api/v2/webhooks"
MAX_ATTEMPTS = 6


@dataclass
class Receiver:
    """A tenant's webhook endpoint: verifies signatures, fails on demand, records events."""

    url: str = ""
    secret: str = ""
    fail_first: int = 0  # answer 500 to this many (correctly signed) requests
    fail_always: bool = False
    requests: int = 0
    bad: list[str] = field(default_factory=list)  # why a request was refused
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> body
    arrivals: list[str] = field(default_factory=list)  # event ids, each accepted request

    def verify(self, headers: Any, body: bytes) -> str | None:
        """Why the request is not authentic, or None: the Standard Webhooks check, written from
        the spec (not Turnout's code)."""
        msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
        if not msg_id or not stamp or headers.get("content-type") != "application/json":
            return "missing headers"
        if abs(time.time() - int(stamp)) > 300:
            return "stale timestamp"
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        expected = base64.b64encode(
            hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        given = [
            s.partition(",")[2] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")
        ]
        if not any(hmac.compare_digest(s, expected) for s in given):
            return "bad signature"
        if json.loads(body)["id"] != msg_id:
            return "webhook-id is not the event id"
        return None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        why = self.verify(request.headers, body)
        if why is not None:
            self.bad.append(why)
            return web.Response(status=401)
        if self.fail_always or self.requests <= self.fail_first:
            return web.Response(status=500, text="not now")
        event = json.loads(body)
        self.events[event["id"]] = event
        self.arrivals.append(event["id"])
        return web.Response(status=204)


@asynccontextmanager
async def receiver(**options: Any) -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1, a free port."""
    rec = Receiver(**options)
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayEnv]:
    """One gateway with fast webhook retries: 50 ms doubling, capped at 200 ms, 6 attempts."""
    async with gateway(
        tmp_path_factory.mktemp("webhooks"),
        webhook_retry_base_s=0.05,
        webhook_retry_max_s=0.2,
        webhook_max_attempts=MAX_ATTEMPTS,
        webhook_timeout_s=5.0,
    ) as env:
        yield env


def admin_of(gw: GatewayEnv, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.container.jwt.mint('ann', tenant, ('tenant_admin',))}"}


async def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


async def create(gw: GatewayEnv, tenant: str, rec: Receiver, types: list[str]) -> dict[str, Any]:
    """A webhook to ``rec``; the receiver learns its secret from the answer."""
    body = {"url": rec.url, "event_types": types, "description": f"{tenant}'s receiver"}
    hook = await ok(await gw.http.post(HOOKS, json=body, headers=admin_of(gw, tenant)), 201)
    assert hook["secret"].startswith("whsec_") and len(base64.b64decode(hook["secret"][6:])) == 32
    rec.secret = hook["secret"]
    return dict(hook)


async def stage(gw: GatewayEnv, event_type: str, tenant: str | None, **payload: Any) -> str:
    """An event in the outbox, committed, as the code that fills it adds one."""
    async with gw.container.sessions.begin() as session:
        event = stage_event(session, event_type, tenant, payload)
    gw.container.webhook_dispatcher.wake()
    return event.id


async def until(check: Callable[[], Any], timeout_s: float = 8.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await _value(check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _value(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def deliveries(gw: GatewayEnv, tenant: str, **query: str) -> list[dict[str, Any]]:
    listing = await ok(await gw.http.get(f"{HOOKS}/deliveries", params=query, headers=admin_of(gw, tenant)))
    return list(listing["items"])


async def test_crud_tenant_isolation_signatures_and_the_test_action(gw: GatewayEnv) -> None:
    alpha, beta = admin_of(gw, "alpha"), admin_of(gw, "beta")
    async with receiver() as ra, receiver() as rb:
        hook_a = await create(gw, "alpha", ra, ["model.request.completed", "budget.exhausted"])
        hook_b = await create(gw, "beta", rb, ["*"])
        assert hook_a["tenant_id"] == "alpha" and hook_b["tenant_id"] == "beta"

        listed_a = await ok(await gw.http.get(HOOKS, headers=alpha))
        assert [h["id"] for h in listed_a["items"]] == [hook_a["id"]]
        listed_b = await ok(await gw.http.get(HOOKS, headers=beta))
        assert [h["id"] for h in listed_b["items"]] == [hook_b["id"]]
        for method in ("GET", "PATCH", "DELETE"):  # another tenant's webhook does not exist for beta
            kwargs: dict[str, Any] = {"json": {"description": "x"}} if method == "PATCH" else {}
            resp = await gw.http.request(method, f"{HOOKS}/{hook_a['id']}", headers=beta, **kwargs)
            assert resp.status_code == 404, resp.text
        assert (await gw.http.post(f"{HOOKS}/{hook_a['id']}/test", headers=beta)).status_code == 404
        refused = await gw.http.get(HOOKS, params={"tenant": "alpha"}, headers=beta)
        assert refused.status_code == 403 and refused.json()["error"]["param"] == "tenant"
        platform = await ok(await gw.http.get(HOOKS, params={"tenant": "alpha"}, headers=gw.admin))
        assert [h["id"] for h in platform["items"]] == [hook_a["id"]]

        got = await ok(await gw.http.get(f"{HOOKS}/{hook_a['id']}", headers=alpha))
        assert got["url"] == ra.url and got["event_types"] == ["model.request.completed", "budget.exhausted"]
        patched = await ok(
            await gw.http.patch(
                f"{HOOKS}/{hook_a['id']}",
                json={
                    "description": "alpha's",
                    "event_types": ["model.request.completed", "model.request.failed"],
                },
                headers=alpha,
            )
        )
        assert patched["description"] == "alpha's" and "model.request.failed" in patched["event_types"]
        for text in (str(listed_a), str(listed_b), str(platform), str(got), str(patched)):
            assert hook_a["secret"] not in text and hook_b["secret"] not in text and "secret" not in text

        completed_a = await stage(gw, "model.request.completed", "alpha", model="m", cost_usd=0.1)
        await stage(gw, "model.feedback.received", "alpha", rating=1)  # alpha did not subscribe to it
        beta_ids = {
            await stage(gw, "model.request.completed", "beta", model="m"),
            await stage(gw, "budget.exhausted", "beta", budget_id="b1"),
        }
        await stage(gw, "provider.sync.completed", None, provider="oai")  # platform-wide: nobody's
        await until(lambda: len(ra.events) == 1 and set(rb.events) == beta_ids)
        await asyncio.sleep(0.4)  # nothing else comes
        assert list(ra.events) == [completed_a] and set(rb.events) == beta_ids
        assert ra.bad == [] and rb.bad == []
        assert ra.events[completed_a] == {
            "id": completed_a,
            "type": "model.request.completed",
            "tenant_id": "alpha",
            "created_at": ra.events[completed_a]["created_at"],
            "data": {"model": "m", "cost_usd": 0.1},
        }
        assert all(e["tenant_id"] == "beta" for e in rb.events.values())
        history_a = await deliveries(gw, "alpha")
        assert [(d["event_id"], d["status"], d["attempts"]) for d in history_a] == [
            (completed_a, "delivered", 1)
        ]
        assert {d["event_id"] for d in await deliveries(gw, "beta")} == beta_ids

        sent = await ok(await gw.http.post(f"{HOOKS}/{hook_a['id']}/test", headers=alpha), 202)
        await until(lambda: sent["event_id"] in ra.events)
        assert ra.events[sent["event_id"]]["type"] == "webhook.test"
        assert ra.events[sent["event_id"]]["tenant_id"] == "alpha"
        assert sent["event_id"] not in rb.events  # beta takes '*', but a test goes to one webhook

        # an inactive webhook takes no events; active again, it takes the next ones
        await ok(await gw.http.patch(f"{HOOKS}/{hook_b['id']}", json={"active": False}, headers=beta))
        missed = await stage(gw, "budget.threshold_crossed", "beta", budget_id="b1")
        await asyncio.sleep(0.4)
        await ok(await gw.http.patch(f"{HOOKS}/{hook_b['id']}", json={"active": True}, headers=beta))
        taken = await stage(gw, "budget.threshold_crossed", "beta", budget_id="b2")
        await until(lambda: taken in rb.events)
        assert missed not in rb.events

        for hook in (hook_a, hook_b):  # the secrets are nowhere in the database's files
            for path in Path(gw.container.settings.data_dir).parent.glob("gw.db*"):
                data = path.read_bytes()
                assert hook["secret"].encode() not in data and hook["secret"][6:].encode() not in data

        await ok(await gw.http.delete(f"{HOOKS}/{hook_a['id']}", headers=alpha), 204)
        assert (await gw.http.get(f"{HOOKS}/{hook_a['id']}", headers=alpha)).status_code == 404
        assert await deliveries(gw, "alpha") == []
        with pytest.raises(SecretNotFound):
            await gw.container.secrets.get(gw.container.secrets.ref_for(f"webhook@{hook_a['id']}"))


async def test_a_receiver_that_fails_for_a_while_gets_every_event(gw: GatewayEnv) -> None:
    async with receiver(fail_first=4) as rec:
        hook = await create(gw, "gamma", rec, ["model.request.completed", "model.request.failed"])
        sent = {
            await stage(gw, "model.request.completed", "gamma", n=0),
            await stage(gw, "model.request.failed", "gamma", n=1),
            await stage(gw, "model.request.completed", "gamma", n=2),
        }
        await until(lambda: set(rec.events) == sent)

        async def all_delivered() -> bool:
            # The receiver sees a delivery before the dispatcher marks it delivered: ask again each time.
            history = await deliveries(gw, "gamma", webhook_id=hook["id"])
            return all(d["status"] == "delivered" for d in history)

        await until(all_delivered)
        history = await deliveries(gw, "gamma", webhook_id=hook["id"])
        assert rec.bad == []
        assert sorted(rec.arrivals) == sorted(sent)  # each once: a delivered one is not sent again
        assert sum(d["attempts"] for d in history) == rec.requests == 3 + 4  # every failure counted
        assert all(d["delivered_at"] and d["last_error"] is None for d in history)


async def test_a_receiver_that_never_recovers_fills_the_dead_letters(gw: GatewayEnv) -> None:
    delta = admin_of(gw, "delta")
    async with receiver(fail_always=True) as rec:
        hook = await create(gw, "delta", rec, ["*"])
        sent = {await stage(gw, "budget.exhausted", "delta", n=n) for n in range(2)}

        async def all_dead() -> bool:
            return len(await deliveries(gw, "delta", status="dead")) == 2

        await until(all_dead)
        dead = await deliveries(gw, "delta", status="dead", webhook_id=hook["id"])
        assert {d["event_id"] for d in dead} == sent
        assert all(d["attempts"] == MAX_ATTEMPTS and d["last_status"] == 500 for d in dead)
        assert all(d["event_type"] == "budget.exhausted" for d in dead)
        assert rec.requests == 2 * MAX_ATTEMPTS and rec.bad == []
        assert await deliveries(gw, "epsilon", status="dead") == []  # another tenant sees none of them

        other = await gw.http.post(
            f"{HOOKS}/deliveries/{dead[0]['id']}/retry", headers=admin_of(gw, "epsilon")
        )
        assert other.status_code == 404
        rec.fail_always = False
        retried = await ok(await gw.http.post(f"{HOOKS}/deliveries/{dead[0]['id']}/retry", headers=delta))
        assert retried["status"] == "pending" and retried["attempts"] == 0
        await until(lambda: dead[0]["event_id"] in rec.events)

        async def delivered() -> bool:
            return [d["id"] for d in await deliveries(gw, "delta", status="delivered")] == [dead[0]["id"]]

        await until(delivered)
        assert [d["id"] for d in await deliveries(gw, "delta", status="dead")] == [dead[1]["id"]]
        again = await gw.http.post(f"{HOOKS}/deliveries/{dead[0]['id']}/retry", headers=delta)
        assert again.status_code == 409, again.text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),  # cloud metadata, link-local
        ({"url": "https://169.254.169.254/hook"}, "url"),
        ({"url": "https://[fe80::1]/hook"}, "url"),
        ({"url": "https://metadata.google.internal/hook"}, "url"),
        ({"url": "http://example.com/hook"}, "url"),  # plain http off loopback
        ({"url": "https://10.1.2.3/hook"}, "url"),  # private, not allowed by the settings
        ({"url": "ftp://127.0.0.1/hook"}, "url"),
        ({"url": "http://[::1/hook"}, "url"),
        ({"event_types": ["model.request.exploded"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"secret": "mine"}, "secret"),
        ({"active": "yes"}, "active"),  # no boolean: it was taken as true
    ],
)
async def test_bad_webhooks_are_refused_naming_the_field(
    gw: GatewayEnv, body: dict[str, Any], param: str
) -> None:
    full = {"url": "https://hooks.example.com/turnout", "event_types": ["*"], **body}
    resp = await gw.http.post(HOOKS, json=full, headers=admin_of(gw, "zeta"))
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.json()["error"]["param"] == param, resp.text
    assert (await ok(await gw.http.get(HOOKS, headers=admin_of(gw, "zeta"))))["items"] == []


async def test_an_update_to_a_refused_url_is_refused(gw: GatewayEnv) -> None:
    eta = admin_of(gw, "eta")
    async with receiver() as rec:
        hook = await create(gw, "eta", rec, ["*"])
        for url in ("http://169.254.169.254/", "http://example.com/hook"):
            resp = await gw.http.patch(f"{HOOKS}/{hook['id']}", json={"url": url}, headers=eta)
            assert resp.status_code == 400 and resp.json()["error"]["param"] == "url", resp.text
        kept = await ok(await gw.http.get(f"{HOOKS}/{hook['id']}", headers=eta))
        assert kept["url"] == rec.url
        user = {"Authorization": f"Bearer {gw.container.jwt.mint('bob', 'eta', ('user',))}"}
        assert (await gw.http.get(HOOKS, headers=user)).status_code == 403


async def test_signatures_match_the_standard_webhooks_test_vector() -> None:
    """The specification's published vector: any Standard Webhooks library verifies Turnout's."""
    signed = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_backoff_doubles_from_the_base_up_to_the_cap(gw: GatewayEnv) -> None:
    dispatcher = gw.container.webhook_dispatcher
    delays = [dispatcher.backoff_s(n) for n in range(1, 7)]
    for delay, expected in zip(delays, (0.05, 0.1, 0.2, 0.2, 0.2, 0.2), strict=True):
        assert expected <= delay <= expected * 1.1


@pytest.mark.asyncio(loop_scope="function")
async def test_two_replicas_deliver_each_event_once(settings: Settings) -> None:
    """Two dispatchers on one database (PostgreSQL: ``SKIP LOCKED``; SQLite: one writer) share the
    fan-out and the deliveries: every event arrives, none twice."""
    async with open_gateway(settings, webhook_retry_base_s=0.05) as env, receiver() as rec:
        await create(env, "theta", rec, ["*"])
        c = env.container
        other = WebhookDispatcher(c.sessions, c.secrets, c.http.session, allow_private=False, interval_s=0.05)
        await other.start()
        try:
            sent = {await stage(env, "model.request.completed", "theta", n=n) for n in range(30)}
            other.wake()
            await until(lambda: set(rec.events) == sent)
            await asyncio.sleep(0.3)
        finally:
            await other.stop()
        assert sorted(rec.arrivals) == sorted(sent) and rec.bad == []
        history = await deliveries(env, "theta", limit="100")
        assert len(history) == 30 and all(d["status"] == "delivered" and d["attempts"] == 1 for d in history)
        assert all(d["next_attempt_at"] is None for d in history), "a delivered event has no next attempt"


async def test_real_calls_and_ratings_reach_a_webhook_made_a_moment_before(gw: GatewayEnv) -> None:
    async with receiver() as rec:
        hook = await create(gw, "acme", rec, ["model.request.completed", "model.feedback.received"])
        raw = await gw.openai().chat.completions.with_raw_response.create(
            model="oai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
        message_id = raw.headers["x-turnout-message-id"]
        rated = await gw.http.post(
            "/api/models/feedback",
            json={"request_id": message_id, "quality_rating": 0.75, "success": True},
            headers={"Authorization": f"Bearer {gw.key}"},
        )
        assert rated.status_code < 300, rated.text

        def arrived() -> dict[str, dict[str, Any]]:
            return {
                e["type"]: e["data"] for e in rec.events.values() if e["data"].get("request_id") == message_id
            }

        await until(lambda: len(arrived()) == 2)
        got = arrived()
        completed = got["model.request.completed"]
        assert completed["model_id"] == "oai/gpt-4o-mini" and completed["tenant_id"] == "acme"
        assert completed["metrics"]["tokens"]["total"] > 0 and completed["metrics"]["cost"] > 0
        assert got["model.feedback.received"]["feedback"]["quality_rating"] == 0.75
        assert not rec.bad
        await ok(await gw.http.delete(f"{HOOKS}/{hook['id']}", headers=admin_of(gw, "acme")), 204)


async def test_a_budget_running_out_reaches_the_tenants_webhook(gw: GatewayEnv) -> None:
    async with receiver() as rec:
        hook = await create(gw, "acme", rec, ["budget.exhausted"])
        budget = await ok(
            await gw.http.post(
                "/api/v2/budgets",
                json={"name": "tiny", "scope": "agent", "scope_id": gw.agent_id, "period": "daily",
                      "amount_usd": 0.000001, "action": "block"},
                headers=admin_of(gw, "acme"),
            ),
            201,
        )  # fmt: skip
        await gw.container.snapshots.reload()
        try:
            refused = await gw.http.post(
                "/v1/chat/completions",
                json={"model": "oai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
                headers={"Authorization": f"Bearer {gw.key}"},
            )
            assert refused.status_code == 429, refused.text
            await until(lambda: any(e["type"] == "budget.exhausted" for e in rec.events.values()))
        finally:
            await gw.http.delete(f"/api/v2/budgets/{budget['id']}", headers=admin_of(gw, "acme"))
            await gw.container.snapshots.reload()
        (event,) = [e for e in rec.events.values() if e["type"] == "budget.exhausted"]
        assert event["tenant_id"] == "acme"
        assert event["data"]["budget_id"] == budget["id"] and event["data"]["budget_name"] == "tiny"
        assert event["data"]["action"] == "block" and event["data"]["amount_usd"] == 0.000001
        await ok(await gw.http.delete(f"{HOOKS}/{hook['id']}", headers=admin_of(gw, "acme")), 204)


@pytest.mark.asyncio(loop_scope="function")
async def test_a_webhook_switched_back_on_hears_the_very_next_call(tmp_path: Path) -> None:
    """Activating a webhook turns events on at once, as creating one does: before, calls made in the
    couple of seconds until the hub's next check produced no event, and the webhook never heard of
    them."""
    async with gateway(tmp_path) as env, receiver() as rec:
        admin = admin_of(env, "acme")
        body = {"url": rec.url, "event_types": ["model.request.completed"], "active": False}
        hook = await ok(await env.http.post(HOOKS, json=body, headers=admin), 201)
        rec.secret = hook["secret"]
        await env.container.events.check_webhooks()  # the hub's periodic check: no active webhook
        assert env.container.events.on is False
        patched = await env.http.patch(f"{HOOKS}/{hook['id']}", json={"active": True}, headers=admin)
        await ok(patched)
        raw = await env.openai().chat.completions.with_raw_response.create(
            model="oai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
        message_id = raw.headers["x-turnout-message-id"]
        await until(lambda: any(e["data"].get("request_id") == message_id for e in rec.events.values()))
        assert not rec.bad


def warnings_of(logs: list[dict[str, Any]], hook_id: str) -> list[dict[str, Any]]:
    """The warning (and worse) lines logged about one webhook."""
    loud = ("warning", "error", "critical")
    return [e for e in logs if e.get("webhook_id") == hook_id and e["log_level"] in loud]


async def test_a_failing_webhook_is_logged_when_it_starts_failing_and_when_it_recovers(
    gw: GatewayEnv,
) -> None:
    """Not one warning per retry (the README's webhook on a dead port filled the log): a warning
    when the webhook starts failing, with the error and the next attempt, one when it recovers."""
    async with receiver(fail_first=8) as rec:
        hook = await create(gw, "kappa", rec, ["*"])
        with capture_logs() as logs:
            sent = {await stage(gw, "budget.exhausted", "kappa", n=n) for n in range(3)}
            await until(lambda: set(rec.events) == sent)

            async def all_delivered() -> bool:
                history = await deliveries(gw, "kappa", webhook_id=hook["id"])
                return all(d["status"] == "delivered" for d in history)

            await until(all_delivered)
        assert rec.requests == 8 + 3
        failing, recovered = warnings_of(logs, hook["id"])
        assert failing["event"] == "webhook_failing" and failing["status"] == 500
        assert failing["error"] == "HTTP 500" and failing["next_attempt_at"]
        assert recovered["event"] == "webhook_recovered" and recovered["failed_attempts"] == 8
        assert recovered["dead_letters"] == 0


async def test_a_webhook_on_a_dead_port_logs_its_failure_and_its_dead_letters_once(gw: GatewayEnv) -> None:
    with socket.socket() as sock:  # a port nothing listens on, as in the README's walkthrough
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    body = {"url": f"http://127.0.0.1:{port}/hook", "event_types": ["*"]}
    hook = await ok(await gw.http.post(HOOKS, json=body, headers=admin_of(gw, "lambda")), 201)
    with capture_logs() as logs:
        sent = {await stage(gw, "budget.exhausted", "lambda", n=n) for n in range(3)}

        async def all_dead() -> bool:
            return len(await deliveries(gw, "lambda", status="dead")) == len(sent)

        await until(all_dead)
    failing, dead = warnings_of(logs, hook["id"])  # 3 x 6 failed attempts, 3 dead letters
    assert failing["event"] == "webhook_failing" and failing["status"] is None
    assert "ClientConnectorError" in failing["error"] and failing["next_attempt_at"]
    assert dead["event"] == "webhook_dead_letter" and dead["event_id"] in sent
    assert dead["attempts"] == MAX_ATTEMPTS
    await ok(await gw.http.delete(f"{HOOKS}/{hook['id']}", headers=admin_of(gw, "lambda")), 204)
