"""An upstream that answers 2xx with JSON of the wrong shape (a broken Ollama build, a proxy that
rewrites bodies) gets the client a 502 naming the provider, in its dialect, and a record attributed
to that model and provider: never a bare 500 with nothing recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from tests.gateway_env import OLLAMA_MODEL, GatewayEnv, gw  # noqa: F401

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
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    resp = await gw.http.patch(
        "/api/v2/admin/providers/local", json={"api_base": f"http://127.0.0.1:{port}"}, headers=gw.admin
    )
    assert resp.status_code == 200, resp.text
    await gw.container.snapshots.reload()
    try:
        yield bodies
    finally:
        await runner.cleanup()


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
