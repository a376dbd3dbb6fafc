"""An upstream that answers 2xx with JSON of the wrong shape (a broken Ollama build, a proxy that
rewrites bodies) gets the client a 502 naming the provider, in its dialect, and a record attributed
to that model and provider: never a bare 500 with nothing recorded."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp import web

from tests.gateway_env import OLLAMA_MODEL, OPENAI_MODEL, GatewayEnv, gateway, gw  # noqa: F401
from tests.live_server import serve_aiohttp

HELLO: Any = [{"role": "user", "content": "hello"}]

# (whole answer, stream lines): right JSON, wrong shapes, as fuzzing the Ollama decoder found them
SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("content is a list", {"message": {"role": "assistant", "content": [1]}, "done": True}),
    ("tool calls are not objects", {"message": {"role": "assistant", "tool_calls": [[1]]}, "done": True}),
    ("a tool call's function is a list", {"message": {"tool_calls": [{"function": []}]}, "done": True}),
    ("token count is text", {"message": {"content": "hi"}, "done": True, "eval_count": "x"}),
    ("done_reason is an object", {"message": {"content": "hi"}, "done": True, "done_reason": {"a": 1}}),
]


@pytest.fixture
async def odd_ollama(gw: GatewayEnv) -> AsyncIterator[list[dict[str, Any]]]:  # noqa: F811
    """A loopback server in Ollama's place that answers every chat with the body put in the list."""
    bodies: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        body = bodies[-1]
        if (await request.json()).get("stream", True):
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            await response.write(web.json_response(body).body + b"\n")  # type: ignore[operator]
            await response.write_eof()
            return response
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    async with serve_aiohttp(app) as url:
        resp = await gw.http.patch("/api/v2/admin/providers/local", json={"api_base": url}, headers=gw.admin)
        assert resp.status_code == 200, resp.text
        await gw.container.snapshots.reload()
        yield bodies


@pytest.mark.parametrize(("shape", "body"), SHAPES, ids=[s for s, _ in SHAPES])
async def test_a_wrongly_shaped_answer_is_a_502_recorded_against_its_provider(
    gw: GatewayEnv,  # noqa: F811
    odd_ollama: list[dict[str, Any]],
    shape: str,
    body: dict[str, Any],
) -> None:
    odd_ollama.append(body)  # every attempt (a malformed answer is retried) gets it
    with pytest.raises(openai.APIStatusError) as whole:
        await gw.openai().chat.completions.create(model=OLLAMA_MODEL, messages=HELLO)
    assert whole.value.status_code == 502, (shape, whole.value.response.text)
    assert "malformed" in whole.value.message, whole.value.message
    with pytest.raises(anthropic.APIStatusError) as messages:  # the Anthropic dialect says it too
        await gw.anthropic().messages.create(model=OLLAMA_MODEL, max_tokens=50, messages=HELLO)
    assert messages.value.status_code == 502, (shape, messages.value.response.text)
    with pytest.raises(openai.APIStatusError) as streamed:  # its first line is checked before answering
        await gw.openai().chat.completions.create(model=OLLAMA_MODEL, messages=HELLO, stream=True)
    assert streamed.value.status_code == 502 and "malformed" in streamed.value.message, streamed.value
    rows = await gw.records(3)
    assert [(r.status, r.model, r.provider) for r in rows[-3:]] == [("error", OLLAMA_MODEL, "local")] * 3
    assert all("malformed" in (r.error or "") for r in rows[-3:]), [r.error for r in rows[-3:]]


def _completion(**fields: Any) -> dict[str, Any]:
    """A well-formed ``chat.completion`` with ``fields`` replaced."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }  # fmt: skip
    return {**body, **fields}


def _message(**fields: Any) -> dict[str, Any]:
    return _completion(choices=[{"index": 0, "message": {"role": "assistant", **fields}}])


# an OpenAI-compatible server's answers, right JSON and wrong shapes, as fuzzing the gateway over
# HTTP found them: each crashed the pass-through (a bare 500, or a stream cut off) with no record
OPENAI_SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("a choice is a number", _completion(choices=[1])),
    ("a message is a number", _completion(choices=[{"index": 0, "message": 1}])),
    ("usage is text", _completion(usage="x")),
    ("content is a number", _message(content=5)),
    ("content is a list of numbers", _message(content=[1])),
    ("tool_calls is text", _message(content=None, tool_calls="x")),
    ("a tool call is a number", _message(content=None, tool_calls=[1])),
    ("a tool call's function is a number", _message(content=None, tool_calls=[{"function": 1}])),
    ("finish_reason is an object", _completion(choices=[{"index": 0, "finish_reason": {"a": 1}}])),
]


@pytest.fixture
async def patient(tmp_path: Path) -> AsyncIterator[GatewayEnv]:
    """A gateway whose breaker stays closed through a test's many malformed answers."""
    async with gateway(tmp_path, breaker_threshold=1000) as env:
        yield env


@dataclass
class OddServer:
    """A loopback OpenAI-compatible server answering with the last of ``bodies``, at ``base``."""

    bodies: list[dict[str, Any]]
    base: str = ""


@pytest.fixture
async def odd_openai(patient: GatewayEnv) -> AsyncIterator[OddServer]:
    """An ``OddServer`` in the OpenAI provider's place: it answers every chat or legacy completion
    with the body put in its list, whole, or as one stream chunk (a chat's messages as deltas) and
    ``[DONE]``."""
    env = patient
    bodies: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        body = bodies[-1]
        if not (await request.json()).get("stream"):
            return web.json_response(body)
        chunk = {**body, "object": "chat.completion.chunk"}
        if request.path.endswith("/chat/completions") and isinstance(body["choices"], list):
            chunk["choices"] = [
                {**c, "delta": c.pop("message", None)} if isinstance(c, dict) else c
                for c in copy.deepcopy(body["choices"])
            ]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", chat)  # legacy text completions: the body as it is
    async with serve_aiohttp(app) as url:
        server = OddServer(bodies, f"{url}/v1")
        resp = await env.http.patch(
            "/api/v2/admin/providers/oai", json={"api_base": server.base}, headers=env.admin
        )
        assert resp.status_code == 200, resp.text
        await env.container.snapshots.reload()
        yield server


@pytest.mark.parametrize(("shape", "body"), OPENAI_SHAPES, ids=[s for s, _ in OPENAI_SHAPES])
async def test_a_wrongly_shaped_openai_answer_is_a_502_recorded_against_its_provider(
    patient: GatewayEnv,
    odd_openai: OddServer,
    shape: str,
    body: dict[str, Any],
) -> None:
    odd_openai.bodies.append(body)
    env = patient
    calls = {
        "chat": lambda: env.openai().chat.completions.create(model=OPENAI_MODEL, messages=HELLO),
        "chat stream": lambda: env.openai().chat.completions.create(
            model=OPENAI_MODEL, messages=HELLO, stream=True
        ),
        "messages": lambda: env.anthropic().messages.create(
            model=OPENAI_MODEL, max_tokens=50, messages=HELLO
        ),
        "messages stream": lambda: env.anthropic().messages.create(
            model=OPENAI_MODEL, max_tokens=50, messages=HELLO, stream=True
        ),
    }
    for name, call in calls.items():
        with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as refused:
            await call()
        assert refused.value.status_code == 502, (shape, name, refused.value.response.text)
        assert "malformed" in refused.value.message, (shape, name, refused.value.message)
    rows = await env.records(4)
    assert [(r.status, r.model, r.provider) for r in rows[-4:]] == [("error", OPENAI_MODEL, "oai")] * 4
    assert all("malformed" in (r.error or "") for r in rows[-4:]), [r.error for r in rows[-4:]]


def _text_completion(**choice: Any) -> dict[str, Any]:
    """A ``text_completion`` whose one choice has ``choice``'s fields."""
    return {
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "text": "hi", "finish_reason": "stop", **choice}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }  # fmt: skip


TEXT_SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("text is a number", _text_completion(text=5)),
    ("finish_reason is a list", _text_completion(finish_reason=[1])),
    ("usage is a number", {**_text_completion(), "usage": 7}),
]


@pytest.mark.parametrize(("shape", "body"), TEXT_SHAPES, ids=[s for s, _ in TEXT_SHAPES])
async def test_a_wrongly_shaped_text_completion_is_a_502_recorded_against_its_provider(
    patient: GatewayEnv,
    odd_openai: OddServer,
    shape: str,
    body: dict[str, Any],
) -> None:
    """A self-hosted (``custom``) server gets legacy completions as they are, and its answers are
    decoded for the record: one of the wrong shape is a 502 too."""
    env = patient
    env.sim.config.flavor = "llama.cpp"  # a self-hosted server's catalog
    await env.add_provider({"id": "vllm", "provider_type": "custom", "api_base": env.sim.api_base("custom")})
    moved = await env.http.patch(
        "/api/v2/admin/providers/vllm", json={"api_base": odd_openai.base}, headers=env.admin
    )
    assert moved.status_code == 200, moved.text
    await env.container.snapshots.reload()
    odd_openai.bodies.append(body)
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as refused:
            await env.openai().completions.create(model="vllm/gpt-4o-mini", prompt="hello", stream=stream)
        assert refused.value.status_code == 502, (shape, stream, refused.value.response.text)
        assert "malformed" in refused.value.message, (shape, stream, refused.value.message)
    rows = await env.records(2)
    assert [(r.status, r.model, r.provider) for r in rows[-2:]] == [("error", "vllm/gpt-4o-mini", "vllm")] * 2
