"""Bad input on the data plane: a 4xx in the caller's dialect, never a 500, nothing sent upstream."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OLLAMA_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]
GOOD_TOOL: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b'{"model": "oai/gpt-4o-mini", "messages": [', 400, None),
        (b"[1, 2]", 400, None),
        ({"model": OPENAI_MODEL}, 400, "messages"),
        ({"model": OPENAI_MODEL, "messages": []}, 400, "messages"),
        ({"model": OPENAI_MODEL, "messages": "hi"}, 400, "messages"),
        ({"model": OPENAI_MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
        ({"model": 42, "messages": HELLO}, 400, "model"),
        ({"model": OPENAI_MODEL, "messages": HELLO, "temperature": 7}, 400, "temperature"),
        ({"model": OPENAI_MODEL, "messages": HELLO, "max_tokens": -1}, 400, "max_tokens"),
        ({"model": OPENAI_MODEL, "messages": HELLO, "n": 3}, 400, "n"),
        ({"model": OPENAI_MODEL, "messages": HELLO, "stream": "yes"}, 400, "stream"),
        (
            {"model": OPENAI_MODEL, "messages": HELLO, "tools": [{"type": "function"}]},
            400,
            "tools[0].function",
        ),
        (
            {
                "model": OPENAI_MODEL,
                "messages": HELLO,
                "tools": [{"type": "function", "function": {"name": "bad name!"}}],
            },
            400,
            "tools[0].function.name",
        ),
        (
            {
                "model": OPENAI_MODEL,
                "messages": HELLO,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}],
            },
            400,
            "tools[0].function.parameters",
        ),
        ({"model": "nobody/nothing", "messages": HELLO}, 404, "model"),
        ({"model": OPENAI_MODEL, "messages": HELLO, "fallbacks": ["nobody/nothing"]}, 404, "fallbacks[0]"),
        ({"model": OPENAI_MODEL, "messages": HELLO, "fallbacks": "x"}, 400, "fallbacks"),
        ({"model": "oai/text-embedding-3-small", "messages": HELLO}, 400, "model"),
    ],
)
async def test_openai_dialect_rejects(gw: GatewayEnv, body: Any, status: int, param: str | None) -> None:  # noqa: F811
    headers = {"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"}
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    resp = await gw.http.post("/v1/chat/completions", headers=headers, **kwargs)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
    assert gw.sim.stats.total == 0, "nothing was forwarded upstream"


ASKED: Any = {"role": "user", "content": "weather?"}
CALL: Any = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
# shapes the official SDKs' types forbid but a hand-written client sends; found by fuzzing the request
# translators: each crashed the Ollama translation, or the prompt's token estimate, into a bare 500
SHAPES: list[tuple[str, Any, str]] = [
    ("text part not a string", [{"role": "user", "content": [{"type": "text", "text": 5}]}],
     "messages[0].content[0].text"),
    ("tool_calls not an array", [ASKED, {"role": "assistant", "content": None, "tool_calls": 5}],
     "messages[1].tool_calls"),
    ("a tool call not an object", [ASKED, {"role": "assistant", "tool_calls": [5]}],
     "messages[1].tool_calls[0]"),
    ("its function not an object", [ASKED, {"role": "assistant", "tool_calls": [{**CALL, "function": 5}]}],
     "messages[1].tool_calls[0].function"),
    ("its arguments not a string",
     [ASKED, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}]}],
     "messages[1].tool_calls[0].function.arguments"),
    ("json_schema not an object", None, "response_format.json_schema"),
]  # fmt: skip


@pytest.mark.parametrize("model", [OPENAI_MODEL, OLLAMA_MODEL])
@pytest.mark.parametrize(("shape", "messages", "param"), SHAPES, ids=[s for s, _, _ in SHAPES])
async def test_a_message_of_the_wrong_shape_is_a_400_naming_it(
    gw: GatewayEnv,  # noqa: F811
    model: str,
    shape: str,
    messages: Any,
    param: str,
) -> None:
    headers = {"Authorization": f"Bearer {gw.key}"}
    body = {"model": model, "messages": messages}
    if messages is None:  # the messages are fine, the response format is not
        body |= {"messages": [ASKED], "response_format": {"type": "json_schema", "json_schema": 5}}
    resp = await gw.http.post("/v1/chat/completions", headers=headers, json=body)
    assert resp.status_code == 400, (shape, resp.text)
    assert resp.json()["error"]["param"] == param, resp.text
    assert gw.sim.stats.total == 0, "nothing was forwarded upstream"


EMBEDDER = "oai/text-embedding-3-small"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": EMBEDDER, "input": [{"text": "a"}]}, "input"),
        ({"model": EMBEDDER, "input": ["a", 5]}, "input"),
        ({"model": EMBEDDER, "input": [1, "a"]}, "input"),
        ({"model": EMBEDDER, "input": [[1, 2], []]}, "input"),
        ({"model": EMBEDDER, "input": "a", "dimensions": 0}, "dimensions"),
        ({"model": EMBEDDER, "input": "a", "dimensions": "8"}, "dimensions"),
        ({"model": EMBEDDER, "input": "a", "encoding_format": "int8"}, "encoding_format"),
    ],
)
async def test_embeddings_bad_input_is_a_400_naming_it(gw: GatewayEnv, body: Any, param: str) -> None:  # noqa: F811
    """Checked here, not by the provider: nothing goes upstream, whichever provider would serve it."""
    resp = await gw.http.post("/v1/embeddings", headers={"Authorization": f"Bearer {gw.key}"}, json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param, resp.text
    assert gw.sim.stats.total == 0, "nothing was forwarded upstream"
    for good in ("a", ["a", "b"], [1, 2, 3], [[1, 2], [3]]):  # every shape OpenAI takes still goes
        ok = await gw.http.post(
            "/v1/embeddings",
            headers={"Authorization": f"Bearer {gw.key}"},
            json={"model": EMBEDDER, "input": good},
        )
        assert ok.status_code == 200, (good, ok.text)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        ({"model": ANTHROPIC_MODEL, "messages": HELLO}, 400),
        ({"model": ANTHROPIC_MODEL, "max_tokens": 10}, 400),
        (
            {
                "model": ANTHROPIC_MODEL,
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "hologram"}]}],
            },
            400,
        ),
        (
            {
                "model": ANTHROPIC_MODEL,
                "max_tokens": 10,
                "messages": HELLO,
                "tools": [{"name": "t", "input_schema": {"type": "string"}}],
            },
            400,
        ),
        ({"model": "nobody/nothing", "max_tokens": 10, "messages": HELLO}, 404),
    ],
)
async def test_anthropic_dialect_rejects(gw: GatewayEnv, body: Any, status: int) -> None:  # noqa: F811
    headers = {"x-api-key": gw.key, "anthropic-version": "2023-06-01", "Content-Type": "application/json"}
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    resp = await gw.http.post("/v1/messages", headers=headers, **kwargs)
    assert resp.status_code == status, resp.text
    payload = resp.json()
    assert payload["type"] == "error" and payload["error"]["type"] in (
        "invalid_request_error",
        "not_found_error",
    )
    assert gw.sim.stats.total == 0


async def test_disabled_model_and_oversized_body(gw: GatewayEnv) -> None:  # noqa: F811
    headers = {"Authorization": f"Bearer {gw.key}"}
    resp = await gw.http.patch(
        f"/api/v2/admin/models/{OPENAI_MODEL}", json={"is_enabled": False}, headers=gw.admin
    )
    assert resp.status_code == 200
    await gw.container.snapshots.reload()
    disabled = await gw.http.post(
        "/v1/chat/completions", json={"model": OPENAI_MODEL, "messages": HELLO}, headers=headers
    )
    assert disabled.status_code == 400 and disabled.json()["error"]["code"] == "model_disabled"
    huge = {"model": ANTHROPIC_MODEL, "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    too_big = await gw.http.post("/v1/chat/completions", json=huge, headers=headers)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    assert gw.sim.stats.total == 0


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/v2/agents"])
async def test_a_compressed_body_is_a_415_saying_so(gw: GatewayEnv, path: str) -> None:  # noqa: F811
    """No route decodes Content-Encoding: a gzip body was read as JSON (400 "not valid UTF-8")."""
    body = gzip.compress(
        orjson.dumps({"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]})
    )
    headers = {
        "Authorization": f"Bearer {gw.key}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    answer = await gw.http.post(path, content=body, headers=headers)
    assert answer.status_code == 415, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unsupported_content_encoding" and "gzip" in error["message"]
    assert gw.upstream_calls() == 0


async def test_authentication_on_the_data_plane(gw: GatewayEnv) -> None:  # noqa: F811
    body = {"model": OPENAI_MODEL, "messages": HELLO}
    for headers in ({}, {"Authorization": "Bearer tk-nope.nope"}, {"Authorization": "Bearer not-a-jwt"}):
        resp = await gw.http.post("/v1/chat/completions", json=body, headers=headers)
        assert resp.status_code == 401 and resp.json()["error"]["type"] == "authentication_error"
    tenant_admin = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    key_id = gw.key.removeprefix("tk-").split(".")[0]
    revoked = await gw.http.delete(f"/api/v2/agents/{gw.agent_id}/keys/{key_id}", headers=tenant_admin)
    assert revoked.status_code == 200
    resp = await gw.http.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {gw.key}"}
    )
    assert resp.status_code == 401, "a revoked key stops working at once"
    user = {"Authorization": f"Bearer {gw.container.jwt.mint('u1', 'acme', ['user'])}"}
    ok = await gw.http.post("/v1/chat/completions", json=body, headers=user)
    assert ok.status_code == 200, "users authenticate with the foundation's JWT too"
    assert gw.sim.stats.total == 1
