"""Commands over NATS request/reply, authorised like the API: ``model.register`` adds a custom model
(as ``POST /api/v2/admin/models``), ``model.performance.reset`` forgets experience, and
``model.request.cancel`` stops a call in flight; a bad command gets an error reply and changes
nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import nats
import openai
import orjson
from sqlalchemy import func, select

from tests.fixtures.nats_server import STREAM, NatsServer, nats_server, stream_events  # noqa: F401
from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gateway
from turnout.store.models import Model

HELLO: Any = [{"role": "user", "content": "hello"}]


@contextlib.asynccontextmanager
async def commanded(tmp_path: Path, server: NatsServer) -> AsyncIterator[tuple[GatewayEnv, nats.NATS]]:
    await server.start()
    async with gateway(tmp_path, nats_url=server.url, nats_stream=STREAM, first_byte_timeout_s=20.0) as gw:
        nc = await nats.connect(server.url)
        try:
            for _ in range(100):  # the gateway subscribes once its connection is up
                with contextlib.suppress(Exception):
                    await command(nc, "model.request.cancel", {"request_id": "x"}, "-", timeout=0.5)
                    break
                await asyncio.sleep(0.1)
            yield gw, nc
        finally:
            await nc.close()


async def command(
    nc: nats.NATS,
    name: str,
    body: Any,
    token: str | None,
    timeout: float = 5.0,
    header: str = "Authorization",
) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {header: f"Bearer {token}"} if token else None
    msg = await nc.request(f"turnout.commands.{name}", data, timeout=timeout, headers=headers)
    reply: dict[str, Any] = orjson.loads(msg.data)
    return reply


async def in_flight(gw: GatewayEnv) -> None:
    """Wait (up to 2 s) until the gateway holds a call in flight."""
    for _ in range(100):
        if gw.container.gateway.inflight:
            return
        await asyncio.sleep(0.02)


async def models(gw: GatewayEnv) -> int:
    async with gw.container.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Model)) or 0)


async def test_register_and_reset_work_and_bad_commands_change_nothing(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    async with commanded(tmp_path, nats_server) as (gw, nc):
        root = gw.container.jwt.mint("root", "platform", ["platform_admin"])
        tenant_admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
        before = await models(gw)
        body = {"provider_id": "oai", "external_id": "my-finetune", "pricing_input": 1, "pricing_output": 2}

        refused = [
            (await command(nc, "model.register", body, None), "missing_token"),
            (await command(nc, "model.register", body, tenant_admin), None),
            (await command(nc, "model.register", b"{not json", root), "invalid_json"),
            (await command(nc, "model.register", {**body, "priority": "high"}, root), "invalid_value"),
            (await command(nc, "model.register", {**body, "provider_id": "nope"}, root), None),
        ]
        for reply, code in refused:
            assert reply["ok"] is False and reply["command"] == "model.register", reply
            assert set(reply["error"]) == {"type", "code", "message", "param"}
            if code is not None:
                assert reply["error"]["code"] == code, reply
        assert refused[1][0]["error"]["type"] == "permission_error"
        assert refused[3][0]["error"]["param"] == "priority"
        assert await models(gw) == before, "a refused command changed nothing"

        created = await command(nc, "model.register", body, root)
        assert created["ok"] is True, created
        assert created["result"]["id"] == "oai/my-finetune"
        shown = await gw.http.get("/api/v2/admin/models/oai/my-finetune", headers=gw.admin)
        assert shown.status_code == 200 and shown.json()["pricing_output"] == 2
        assert await models(gw) == before + 1

        raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
        rated = await gw.http.post(
            "/api/models/feedback",
            json={"request_id": raw.headers["x-turnout-message-id"], "quality_rating": 0.2, "success": False},
            headers={"Authorization": f"Bearer {gw.key}"},
        )
        assert rated.status_code < 300, rated.text
        bad = await command(nc, "model.performance.reset", {"model": OPENAI_MODEL}, root)
        assert bad["ok"] is False and bad["error"]["param"] in ("model", "model_id"), bad
        reset = await command(
            nc, "model.performance.reset", {"model_id": OPENAI_MODEL}, root, header="authorization"
        )
        assert reset["ok"] is True, reset  # header names are case-insensitive, as in HTTP
        typo = await command(nc, "model.performance.reset", {"model_id": "oai/gpt-4o-mnii"}, root)
        assert typo["ok"] is False and typo["error"]["code"] == "not_found", (
            "a typo resets nothing, and says so"
        )
        typo_api = await gw.http.post(
            "/api/v2/admin/models/performance/reset", json={"model_id": "oai/gpt-4o-mnii"}, headers=gw.admin
        )
        assert typo_api.status_code == 404 and typo_api.json()["error"]["param"] == "model_id"
        api = await gw.http.post(
            "/api/v2/admin/models/performance/reset", json={"model_id": OPENAI_MODEL}, headers=gw.admin
        )
        assert api.status_code == 200 and set(api.json()) == set(reset["result"]), "the API's own answer"


async def test_a_call_in_flight_is_cancelled(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    async with commanded(tmp_path, nats_server) as (gw, nc):
        gw.sim.inject("stall:10", count=1)
        headers = {"Authorization": f"Bearer {gw.key}"}
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
            pending = asyncio.ensure_future(
                http.post(
                    "/v1/chat/completions", json={"model": OPENAI_MODEL, "messages": HELLO}, headers=headers
                )
            )
            await in_flight(gw)
            (request_id,) = list(gw.container.gateway.inflight)
            other = gw.container.jwt.mint("eve", "globex", ["tenant_admin"])
            stranger = await command(nc, "model.request.cancel", {"request_id": request_id}, other)
            assert stranger["ok"] is False and stranger["error"]["code"] == "not_found"
            unknown = await command(nc, "model.request.cancel", {"request_id": "no-such"}, other)
            assert unknown["ok"] is False and unknown["error"]["param"] == "request_id"
            started = asyncio.get_running_loop().time()
            admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
            done = await command(nc, "model.request.cancel", {"request_id": request_id}, admin)
            assert done == {
                "ok": True,
                "command": "model.request.cancel",
                "result": {"request_id": request_id, "status": "cancelled"},
            }
            resp = await pending
            assert asyncio.get_running_loop().time() - started < 3, (
                "the stalled upstream call was not waited for"
            )
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "request_cancelled", resp.text
        assert resp.headers["x-turnout-message-id"] == request_id
        assert resp.headers["x-should-retry"] == "false", "the SDKs retry a 409 otherwise"
        (row,) = await gw.records(1)
        assert (row.id, row.status, row.error) == (request_id, "cancelled", "cancelled by command")
        events = await stream_events(nats_server.url, 3 + 1, timeout_s=15)  # the syncs and the call
        (cancelled,) = [e for e in events if e["type"] == "model.request.cancelled"]
        assert cancelled["data"]["request_id"] == request_id
        assert cancelled["data"]["error"]["message"] == "cancelled by command"


async def test_a_stream_in_flight_is_cancelled_with_an_error_event_in_its_dialect(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    """Once a stream has begun its client cannot get a 409: the stream ends with the dialect's
    error event (it was cut off mid-chunk, the server logging a CancelledError), and the record
    says cancelled, 409."""
    async with commanded(tmp_path, nats_server) as (gw, nc):
        admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
        ends = {
            "/v1/chat/completions": ({"Authorization": f"Bearer {gw.key}"}, b'data: {"error"'),
            "/v1/messages": ({"x-api-key": gw.key, "anthropic-version": "2023-06-01"}, b"event: error"),
        }
        ids = []
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
            for path, (headers, end) in ends.items():
                gw.sim.inject("stall_after:2:10", count=1)
                body = {"model": OPENAI_MODEL, "max_tokens": 50, "stream": True, "messages": HELLO}
                async with http.stream("POST", path, json=body, headers=headers) as resp:
                    assert resp.status_code == 200
                    request_id = resp.headers["x-turnout-message-id"]
                    chunks = resp.aiter_raw()
                    received = await chunks.__anext__()  # the stream has begun
                    started = asyncio.get_running_loop().time()
                    done = await command(nc, "model.request.cancel", {"request_id": request_id}, admin)
                    assert done["ok"] is True, done
                    async for chunk in chunks:  # ends cleanly: no RemoteProtocolError
                        received += chunk
                    assert asyncio.get_running_loop().time() - started < 3, "the stall was not waited out"
                assert end in received and b"model.request.cancel" in received, received[-300:]
                ids.append(request_id)
        rows = {r.id: r for r in await gw.records(2)}
        for request_id in ids:
            row = rows[request_id]
            assert (row.status, row.http_status, row.error) == ("cancelled", 409, "cancelled by command")
        events = await stream_events(nats_server.url, 3 + 2, timeout_s=15)
        cancelled = {
            e["data"]["request_id"]: e["data"] for e in events if e["type"] == "model.request.cancelled"
        }
        assert set(cancelled) == set(ids) and all(c["error"]["code"] == 409 for c in cancelled.values())


async def test_a_call_is_cancelled_by_the_id_its_caller_gave_it(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    """A call's own id reaches its client only with the answer, too late to cancel a non-streaming
    call: the caller names it with ``X-Client-Request-Id`` (OpenAI's header), and the command cancels
    it by that name, in either SDK, for the caller's tenant only; the record, the access line's
    source and the event keep the name."""
    async with commanded(tmp_path, nats_server) as (gw, nc):
        admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
        other = gw.container.jwt.mint("eve", "globex", ["tenant_admin"])
        openai_sdk = gw.openai().with_options(max_retries=2)  # retries on: the 409 says not to
        anthropic_sdk = gw.anthropic().with_options(max_retries=2)
        calls = {
            "report-7": lambda name: openai_sdk.chat.completions.create(
                model=OPENAI_MODEL, messages=HELLO, extra_headers={"X-Client-Request-Id": name}
            ),
            "summary-8": lambda name: anthropic_sdk.messages.create(
                model=OPENAI_MODEL, max_tokens=50, messages=HELLO, extra_headers={"X-Client-Request-Id": name}
            ),
        }
        root = gw.container.jwt.mint("root", "platform", ["platform_admin"])  # any tenant's calls
        cancellers = {"report-7": admin, "summary-8": root}
        for name, call in calls.items():
            gw.sim.inject("stall:10", count=1)
            pending = asyncio.ensure_future(call(name))
            await in_flight(gw)
            # in flight, but another tenant's admin cannot see it
            stranger = await command(nc, "model.request.cancel", {"client_request_id": name}, other)
            assert stranger["ok"] is False and stranger["error"]["param"] == "client_request_id", stranger
            started = asyncio.get_running_loop().time()
            done = await command(nc, "model.request.cancel", {"client_request_id": name}, cancellers[name])
            assert done["ok"] is True and done["result"]["client_request_id"] == name, done
            (request_id,) = done["result"]["request_ids"]
            try:
                await pending
                raise AssertionError("the cancelled call was answered")
            except (openai.ConflictError, anthropic.ConflictError) as exc:
                assert exc.status_code == 409 and exc.response.headers["x-turnout-message-id"] == request_id
            assert asyncio.get_running_loop().time() - started < 3, "the stall (or a retry) was waited out"
        rows = {r.metadata_["client_request_id"]: r for r in await gw.records(2)}
        assert {name: rows[name].status for name in calls} == {name: "cancelled" for name in calls}
        found = await gw.http.get(
            "/api/v2/messages", params={"client_request_id": "report-7"}, headers=gw.admin
        )
        assert [m["id"] for m in found.json()["items"]] == [rows["report-7"].id], found.text
        detail = await gw.http.get(f"/api/v2/messages/{rows['summary-8'].id}", headers=gw.admin)
        assert detail.json()["client_request_id"] == "summary-8", detail.text
        events = await stream_events(nats_server.url, 3 + 2, timeout_s=15)
        named = {e["data"]["client_request_id"] for e in events if e["type"] == "model.request.cancelled"}
        assert named == set(calls)


async def test_an_embeddings_call_in_flight_is_cancelled_by_id_and_by_name(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    """An embeddings call (a batch job's, say) stuck on a stalled upstream is cancelled like a chat
    call: by its id or by the name its caller gave it, its upstream call with it; the SDK gets 409
    (no retry) and the record says cancelled by command."""
    async with commanded(tmp_path, nats_server) as (gw, nc):
        admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
        sdk = gw.openai().with_options(max_retries=2)  # retries on: the 409 says not to
        for how in ("request_id", "client_request_id"):
            gw.sim.inject("stall:10", count=1)
            pending = asyncio.ensure_future(
                sdk.embeddings.create(
                    model="oai/text-embedding-3-small",
                    input=["one", "two"],
                    extra_headers={"X-Client-Request-Id": f"batch-{how}"},
                )
            )
            await in_flight(gw)
            (request_id,) = list(gw.container.gateway.inflight)
            body = {"request_id": request_id} if how == "request_id" else {how: f"batch-{how}"}
            started = asyncio.get_running_loop().time()
            done = await command(nc, "model.request.cancel", body, admin)
            assert done["ok"] is True, done
            try:
                await pending
                raise AssertionError("the cancelled embeddings call was answered")
            except openai.ConflictError as exc:
                assert exc.status_code == 409 and exc.response.headers["x-turnout-message-id"] == request_id
            assert asyncio.get_running_loop().time() - started < 3, "the stall (or a retry) was waited out"
        rows = await gw.records(2)
        assert {(r.endpoint, r.status, r.error) for r in rows} == {
            ("embeddings", "cancelled", "cancelled by command")
        }
        assert not gw.container.gateway.inflight


async def test_cancel_by_name_refuses_a_bad_body_and_the_gateway_a_bad_header(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    async with commanded(tmp_path, nats_server) as (gw, nc):
        admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
        bodies: list[dict[str, str]] = [
            {},
            {"request_id": "a", "client_request_id": "b"},
            {"client_request_id": ""},
            {"client_request_id": "rapport-été"},  # no call can carry it
        ]
        for body in bodies:
            reply = await command(nc, "model.request.cancel", body, admin)
            assert reply["ok"] is False and reply["error"]["code"] == "invalid_value", (body, reply)
            assert "Value error" not in reply["error"]["message"], reply
        assert "one of request_id and client_request_id" in reply_message(
            await command(nc, "model.request.cancel", {}, admin)
        )
        utf8 = await gw.http.post(  # the SDKs send ASCII only; a raw client may send anything
            "/v1/chat/completions",
            json={"model": OPENAI_MODEL, "messages": HELLO},
            headers={"Authorization": f"Bearer {gw.key}", "X-Client-Request-Id": "rapport-été".encode()},
        )
        assert utf8.status_code == 400 and utf8.json()["error"]["param"] == "x-client-request-id", utf8.text
        responses = await gw.http.post(
            "/v1/responses",
            json={"model": OPENAI_MODEL, "input": "hello"},
            headers={"Authorization": f"Bearer {gw.key}", "X-Client-Request-Id": "x" * 513},
        )
        assert responses.status_code == 400, responses.text
        assert responses.json()["error"]["param"] == "x-client-request-id", responses.text
        for bad in ("x" * 513, ""):
            try:
                await gw.openai().chat.completions.create(
                    model=OPENAI_MODEL, messages=HELLO, extra_headers={"X-Client-Request-Id": bad}
                )
                raise AssertionError("a bad X-Client-Request-Id was let through")
            except openai.BadRequestError as exc:
                assert exc.body is not None and exc.body["param"] == "x-client-request-id", exc.body
            try:
                await gw.anthropic().messages.create(
                    model=OPENAI_MODEL,
                    max_tokens=5,
                    messages=HELLO,
                    extra_headers={"X-Client-Request-Id": bad},
                )
                raise AssertionError("a bad X-Client-Request-Id was let through")
            except anthropic.BadRequestError as exc:
                assert "x-client-request-id" in exc.message, exc.message
        assert await gw.records(0) == []


def reply_message(reply: dict[str, Any]) -> str:
    return str(reply["error"]["message"])


async def test_a_bad_command_names_every_bad_field(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    """A body with several bad fields gets one reply naming them all (``param``: the first), the
    message the API gives the same body, so a caller fixes them in one try; one bad field reads as
    it did."""
    async with commanded(tmp_path, nats_server) as (gw, nc):
        root = gw.container.jwt.mint("root", "platform", ["platform_admin"])
        admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
        before = await models(gw)
        model = {"provider_id": "Not A Slug", "external_id": "ft", "priority": "high", "ctx_length": 0}
        reset = {"model_id": "", "task_types": ["chat"] * 101, "agent_id": "a" * 65}
        for name, body, path, fields in [
            ("model.register", model, "/api/v2/admin/models", ["provider_id", "priority", "ctx_length"]),
            (
                "model.performance.reset",
                reset,
                "/api/v2/admin/models/performance/reset",
                ["model_id", "task_types", "agent_id"],
            ),
        ]:
            reply = await command(nc, name, body, root)
            error = reply["error"]
            assert reply["ok"] is False and error["code"] == "invalid_value", reply
            assert error["param"] == fields[0], reply
            assert [part.split(":")[0] for part in error["message"].split("; ")] == fields, reply
            api = await gw.http.post(path, json=body, headers=gw.admin)
            assert api.status_code == 400 and api.json()["error"]["message"] == error["message"], api.text

        cancel = await command(
            nc, "model.request.cancel", {"request_id": "", "client_request_id": "rapport-été"}, admin
        )
        assert cancel["error"]["param"] == "request_id", cancel
        assert cancel["error"]["message"] == (
            "request_id: String should have at least 1 character; client_request_id: must be 1 to 512 "
            "printable ASCII characters, as X-Client-Request-Id is"
        ), cancel

        one = await command(
            nc, "model.register", {"provider_id": "oai", "external_id": "ft", "priority": "x"}, root
        )
        assert (one["error"]["param"], one["error"]["message"]) == (
            "priority",
            "priority: Input should be a valid integer, unable to parse string as an integer",
        ), one
        neither = await command(nc, "model.request.cancel", {}, admin)
        assert (neither["error"]["param"], neither["error"]["message"]) == (
            None,
            "body: give one of request_id and client_request_id",
        ), neither
        assert await models(gw) == before, "a refused command registers nothing"
