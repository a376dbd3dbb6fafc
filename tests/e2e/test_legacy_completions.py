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
        model=model, prompt="Tell me about turnouts", max_tokens=64, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
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
