"""Usage is never lost: when an upstream stream omits usage (llama.cpp does, even with
include_usage), Turnout estimates the tokens, prices them, marks the record estimated, and still
gives OpenAI clients that asked their usage chunk and Anthropic clients non-zero usage."""

from __future__ import annotations

from typing import Any

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "Tell me about the sea in a few words"}]


async def test_an_openai_stream_without_upstream_usage_still_reports_usage(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.config.flavor = "llama.cpp"  # streams carry no usage
    stream = await gw.openai().chat.completions.create(
        model=OPENAI_MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    row = (await gw.records(1))[-1]
    assert (row.prompt_tokens, row.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert row.cost_usd is not None and row.cost_usd > 0, "estimated tokens are priced"
    assert row.usage_estimated is True


async def test_an_anthropic_stream_without_upstream_usage_reports_non_zero_usage(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.config.flavor = "llama.cpp"
    async with gw.anthropic().messages.stream(model=OPENAI_MODEL, max_tokens=50, messages=HELLO) as stream:
        final = await stream.get_final_message()
    assert final.usage.output_tokens > 0
    row = (await gw.records(1))[-1]
    assert row.completion_tokens == final.usage.output_tokens and row.usage_estimated is True


async def test_reported_usage_is_kept_and_not_marked_estimated(gw: GatewayEnv) -> None:  # noqa: F811
    stream = await gw.openai().chat.completions.create(
        model=OPENAI_MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    usage = [chunk async for chunk in stream][-1].usage
    row = (await gw.records(1))[-1]
    assert usage is not None and row.completion_tokens == usage.completion_tokens
    assert row.usage_estimated is False
