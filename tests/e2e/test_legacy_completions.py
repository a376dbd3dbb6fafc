"""Legacy ``/v1/completions`` through the official ``openai`` SDK: a prompt answered by any chat
model (translated), whole and streamed, recorded as a ``completions`` call."""

from __future__ import annotations

import openai
import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OLLAMA_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL, OLLAMA_MODEL])
async def test_prompt_whole_and_streamed(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    client = gw.openai()
    whole = await client.completions.create(model=model, prompt="Tell me about turnouts", max_tokens=64)
    assert whole.object == "text_completion" and whole.model == model
    assert whole.choices[0].text.startswith("Echo: Tell me about turnouts")
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.completion_tokens > 0
    stream = await client.completions.create(
        model=model,
        prompt="Tell me about turnouts",
        max_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    async for chunk in stream:
        assert chunk.object == "text_completion"
        text += [choice.text for choice in chunk.choices]
        usage = chunk.usage or usage
    assert "".join(text) == whole.choices[0].text
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens
    rows = await gw.records(2)
    assert [r.endpoint for r in rows[-2:]] == ["completions", "completions"]
    assert all(r.status == "ok" for r in rows[-2:])


async def test_default_max_tokens_is_the_legacy_16(gw: GatewayEnv) -> None:  # noqa: F811
    await gw.openai().completions.create(model=OPENAI_MODEL, prompt="hello")
    assert gw.sim.requests[-1].body["max_tokens"] == 16


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": "x", "echo": True}, "echo"),
        ({"prompt": "x", "suffix": "y"}, "suffix"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "logprobs": 2}, "logprobs"),
        ({"prompt": "x", "temperature": 9}, "temperature"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(gw: GatewayEnv, extra: dict, param: str) -> None:  # noqa: F811
    with pytest.raises(openai.BadRequestError) as exc:
        await gw.openai().completions.create(model=OPENAI_MODEL, **extra)
    assert exc.value.body["param"] == param  # type: ignore[index]
    assert gw.upstream_calls() == 0


async def test_a_self_hosted_server_gets_the_prompt_itself(gw: GatewayEnv) -> None:  # noqa: F811
    """vLLM and llama.cpp serve /v1/completions for every model: the prompt goes there raw (no chat
    template), the client's bytes unchanged but for the model id, and the answer comes back as is."""
    gw.sim.config.flavor = "llama.cpp"
    provider = {
        "id": "vllm",
        "display_name": "vLLM",
        "provider_type": "custom",
        "api_base": f"{gw.sim.api_base('custom')}",
        "api_key": "sk-sim-Upstream7Key4Tests",
    }
    assert (await gw.http.post("/api/v2/admin/providers", json=provider, headers=gw.admin)).status_code == 201
    assert (await gw.http.post("/api/v2/admin/providers/vllm/sync", headers=gw.admin)).status_code == 200
    tenant_admin = {"Authorization": "Bearer " + gw.container.jwt.mint("ann", "acme", ["tenant_admin"])}
    enabled = await gw.http.post(
        "/api/v2/agents/bot/models", json={"bulk_filter": {"provider": "vllm"}}, headers=tenant_admin
    )
    assert enabled.status_code < 300, enabled.text
    await gw.container.snapshots.reload()
    model = "vllm/gpt-4o-mini"
    raw = b'{"model": "%s", "prompt": "Once upon a time", "max_tokens": 5, "seed": 7}' % model.encode()
    auth = {"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"}
    whole = await gw.http.post("/v1/completions", content=raw, headers=auth)
    assert whole.status_code == 200, whole.text
    sent = gw.sim.requests[-1]
    assert sent.path == "/v1/completions"
    assert sent.raw == raw.replace(model.encode(), b"gpt-4o-mini")
    answer = whole.json()
    assert answer["object"] == "text_completion" and answer["model"] == model
    assert (
        answer["choices"][0]["text"].startswith("Echo") and answer["choices"][0]["finish_reason"] == "length"
    )
    client = gw.openai()
    stream = await client.completions.create(
        model=model,
        prompt="Once upon a time",
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert {c.model for c in chunks} == {model}
    assert "".join(c.choices[0].text for c in chunks if c.choices) == answer["choices"][0]["text"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    rows = await gw.records(2)
    assert [(r.model, r.endpoint, r.completion_tokens) for r in rows[-2:]] == [(model, "completions", 5)] * 2
