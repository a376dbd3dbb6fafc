"""Every provider format's answers, altered, never crash the gateway.

A proxy in front of the simulator passes each upstream call on and changes the answer as a broken
server or a rewriting proxy might: one node of the JSON (whole, or one line of the stream) set to a
value of another type, or dropped; or, in the second test, also an error status with an odd body and
odd ``Retry-After``, or the answer cut short. Whatever came back, the client gets an answer or a
clear error in its own dialect, never a bare 500 or a connection cut mid-stream, and every request
is recorded against the model and provider that served it. The seeds are fixed; each found bugs
when it was written (usage counts as text reached metrics, a Responses ``output`` that was no list
reached the store, an Anthropic tool call named by a list reached the record, an error ``code``
that was an object, and more)."""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import ClientSession, web

from tests.gateway_env import GatewayEnv, gateway
from tests.live_server import serve_aiohttp

VALUES: list[Any] = [5, "x", [1], {"a": 1}, None, -1, True, 1.5, [], {}]
STATUSES = [200, 204, 302, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529]
RETRY_AFTER = ["abc", "-5", "1e9", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "nan", "inf", ""]
ERROR_BODIES = [
    b"", b"<html>oops</html>", b"null", b"[]", b"5", b'"x"', b"{}", b"\xff\xfe", b'{"error": 5}',
    b'{"error": {"message": 5, "type": [1], "code": {"a": 1}}}', b'{"error": {"message": null}}',
    b'{"type": "error", "error": {"type": 5, "message": [1], "details": {"error_code": [1]}}}',
    b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"retryDelay": 5}]}}',
    b'{"message": 5}', b'{"detail": [1]}', b'{"error": {"message": "' + b"a" * 100_000 + b'"}}',
]  # fmt: skip
REQUESTS = 400
TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path below the root."""
    out = [path] if path else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out += _paths(child, (*path, key))
    return out


def _alter(obj: Any, rng: random.Random) -> Any:
    """``obj`` with one node set to a value of another type, or (one time in five) dropped."""
    paths = _paths(obj)
    if not paths:
        return rng.choice(VALUES)
    path = rng.choice(paths)
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(VALUES)
    return obj


def _altered(raw: bytes, content_type: str, rng: random.Random) -> bytes:
    """An answer with one JSON value changed: the body, or one line of a stream (SSE or NDJSON)."""
    if "event-stream" not in content_type and "ndjson" not in content_type:
        return orjson.dumps(_alter(orjson.loads(raw), rng)) if "json" in content_type else raw
    lines = raw.decode().split("\n")
    candidates = [i for i, line in enumerate(lines) if line.startswith(("data: {", "{"))]
    if candidates:
        i = rng.choice(candidates)
        prefix = "data: " if lines[i].startswith("data: ") else ""
        lines[i] = prefix + orjson.dumps(_alter(orjson.loads(lines[i][len(prefix) :]), rng)).decode()
    return "\n".join(lines).encode()


def _failed(rng: random.Random) -> web.Response:
    """An error answer: a status, a body and a ``Retry-After`` of any kind."""
    status = rng.choice(STATUSES)
    headers = {"Content-Type": rng.choice(["application/json", "text/html", "text/event-stream"])}
    if rng.random() < 0.5:
        headers[rng.choice(["Retry-After", "retry-after-ms"])] = rng.choice(RETRY_AFTER)
    if status in (204, 302):
        return web.Response(status=status, headers={"Location": "http://example.invalid/"})
    return web.Response(body=rng.choice(ERROR_BODIES), status=status, headers=headers)


@dataclass
class Fuzzed:
    """The gateway behind the altering proxy: its random generator, a chat model and an embeddings
    model of each provider, and whether answers may also fail or be cut short."""

    gw: GatewayEnv
    rng: random.Random
    models: dict[str, str]
    embedders: dict[str, str]
    failing: bool = False


@pytest.fixture
async def fuzzed(tmp_path: Path) -> AsyncIterator[Fuzzed]:
    """A gateway (breaker kept closed) whose five providers (OpenAI, Anthropic, Ollama, Gemini and
    Bedrock formats; Bedrock's binary event streams go unaltered) reach the simulator through the
    altering proxy."""
    async with gateway(tmp_path, breaker_threshold=1_000_000) as gw, ClientSession() as session:
        fuzzed = Fuzzed(gw, random.Random(), {}, {})
        rng, sim = fuzzed.rng, gw.sim.base_url.rstrip("/")

        async def proxy(request: web.Request) -> web.StreamResponse:
            # the Host goes on as it came: Bedrock's SigV4 signature covers it
            headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
            async with session.request(
                request.method, sim + request.path_qs, data=await request.read(), headers=headers
            ) as upstream:
                raw, status = await upstream.read(), upstream.status
                content_type = upstream.headers.get("Content-Type", "application/json")
            if request.method == "POST" and status == 200:
                draw = rng.random() if fuzzed.failing else 1.0
                if draw < 0.4:
                    return _failed(rng)
                raw = raw[: rng.randrange(len(raw) or 1)] if draw < 0.6 else _altered(raw, content_type, rng)
            return web.Response(body=raw, status=status, headers={"Content-Type": content_type})

        await gw.add_provider({"id": "gem", "provider_type": "gemini", "api_base": gw.sim.api_base("gemini")})
        aws = {"aws_access_key_id": "AKIA" + "F" * 16, "aws_secret_access_key": secrets.token_urlsafe(30)}
        gw.sim.config.update(aws)  # the simulator checks Bedrock's SigV4 signatures with this pair
        await gw.add_provider({"id": "aws", "provider_type": "bedrock", "api_base": sim, "credentials": aws})
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy)
        async with serve_aiohttp(app) as url:  # the providers move behind the proxy
            for provider in ("oai", "claude", "local", "gem", "aws"):
                found = await gw.http.get(f"/api/v2/admin/providers/{provider}", headers=gw.admin)
                moved = await gw.http.patch(
                    f"/api/v2/admin/providers/{provider}",
                    json={"api_base": found.json()["api_base"].replace(sim, url)},
                    headers=gw.admin,
                )
                assert moved.status_code == 200, moved.text
                listed = await gw.http.get(
                    "/api/v2/admin/models", params={"provider": provider}, headers=gw.admin
                )
                ids = [m["id"] for m in listed.json()["items"]]
                fuzzed.models[provider] = next(i for i in ids if "embed" not in i)
                fuzzed.embedders.update((provider, i) for i in ids if "embed" in i)
            await gw.container.snapshots.reload()
            yield fuzzed


def _request(rng: random.Random, model: str, dialects: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """A chat in one of ``dialects``, streamed or not, with a tool one time in three."""
    dialect, stream, tools = rng.choice(dialects), rng.random() < 0.5, rng.random() < 0.3
    hello = [{"role": "user", "content": "hello"}]
    if dialect == "chat":
        body: dict[str, Any] = {"model": model, "messages": hello, "stream": stream}
        if tools:
            body["tools"] = [{"type": "function", "function": TOOL}]
        return "/v1/chat/completions", body
    if dialect == "messages":
        body = {"model": model, "max_tokens": 30, "messages": hello, "stream": stream}
        if tools:
            body["tools"] = [{"name": TOOL["name"], "description": "w", "input_schema": TOOL["parameters"]}]
        return "/v1/messages", body
    if dialect == "legacy":
        return "/v1/completions", {"model": model, "prompt": "hello", "stream": stream}
    if dialect == "count":
        return "/v1/messages/count_tokens", {"model": model, "messages": hello}
    body = {"model": model, "input": "hello", "stream": stream}
    if tools:
        body["tools"] = [{"type": "function", **TOOL}]
    return "/v1/responses", body


async def _survives(fuzzed: Fuzzed, dialects: tuple[str, ...]) -> None:
    """``REQUESTS`` calls, each to a random provider (or embeddings, if among ``dialects``): none
    ends in a 500 or a cut connection, and each made a record of its model and provider."""
    gw, rng = fuzzed.gw, fuzzed.rng
    auth = {"Authorization": f"Bearer {gw.key}"}
    broken: list[tuple[int, str, Any, int, str]] = []
    asked: list[tuple[str, str]] = []
    for i in range(REQUESTS):
        if "embeddings" in dialects and rng.random() < 1 / len(dialects):  # a provider that embeds
            provider = rng.choice(sorted(fuzzed.embedders))
            path, body = "/v1/embeddings", {"model": fuzzed.embedders[provider], "input": "hello"}
        else:
            provider = rng.choice(sorted(fuzzed.models))
            path, body = _request(
                rng, fuzzed.models[provider], tuple(d for d in dialects if d != "embeddings")
            )
        if path != "/v1/messages/count_tokens":  # counting tokens is not a call: no record
            asked.append((body["model"], provider))
        try:
            answer = await gw.http.post(path, json=body, headers=auth, timeout=30)
            status, text = answer.status_code, answer.text
        except httpx.HTTPError as exc:  # cut mid-stream
            status, text = 0, repr(exc)
        if status in (0, 500) or "internal error" in text:
            broken.append((i, path, body.get("stream"), status, text[-200:]))
    assert not broken, broken
    rows = await gw.records(len(asked))
    assert sorted((r.model, r.provider) for r in rows) == sorted(asked)


@pytest.mark.parametrize("seed", [1, 6, 12, 19])
async def test_altered_answers_get_an_answer_or_a_clear_error_and_a_record(fuzzed: Fuzzed, seed: int) -> None:
    fuzzed.rng.seed(seed)
    await _survives(fuzzed, ("chat", "messages", "responses"))


@pytest.mark.parametrize("seed", [1, 4])
async def test_failing_and_cut_answers_on_every_endpoint_too(fuzzed: Fuzzed, seed: int) -> None:
    fuzzed.rng.seed(seed)
    fuzzed.failing = True
    await _survives(fuzzed, ("chat", "messages", "responses", "legacy", "count", "embeddings"))
