"""The simulated Anthropic API's extended thinking and prompt caching, driven by the official SDK: what a
gateway in front of it is checked against (signed thinking, refused replays, cache accounting)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from turnout.simulator import Simulator, SimulatorConfig
from turnout.simulator.anthropic_extended import REDACTED_TRIGGER, signature

KEY = "sk-sim-test-0123456789abcdef"
MODEL = "claude-haiku-4-5"
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
ASK: Any = [{"role": "user", "content": "Hello there simulator"}]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=KEY))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def claude(sim: Simulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=KEY, max_retries=0)
    yield client
    await client.close()


async def test_thinking_is_signed_streamed_and_checked_when_replayed(
    claude: anthropic.AsyncAnthropic,
) -> None:
    whole = await claude.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING, messages=ASK)
    thought = whole.content[0]
    assert thought.type == "thinking" and thought.signature == signature(thought.thinking)
    assert whole.usage.output_tokens_details is not None
    assert whole.usage.output_tokens == whole.usage.output_tokens_details.thinking_tokens + 16
    deltas: list[str] = []
    async with claude.messages.stream(
        model=MODEL, max_tokens=2000, thinking=THINKING, messages=ASK
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                deltas.append(event.delta.type)
        streamed = await stream.get_final_message()
    assert [b.model_dump(exclude_none=True) for b in streamed.content] == [
        b.model_dump(exclude_none=True) for b in whole.content
    ], "deterministic"
    assert deltas.count("signature_delta") == 1 and deltas[0] == "thinking_delta"

    replay: Any = [*ASK, {"role": "assistant", "content": [b.model_dump() for b in whole.content]}]
    replay.append({"role": "user", "content": "and then?"})
    assert (
        await claude.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING, messages=replay)
    ).content
    replay[1]["content"][0]["signature"] = signature("something else")
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.1\.content\.0: Invalid `signature`"):
        await claude.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING, messages=replay)


async def test_redacted_thinking_and_thinking_rules(claude: anthropic.AsyncAnthropic, sim: Simulator) -> None:
    ask: Any = [{"role": "user", "content": REDACTED_TRIGGER}]
    redacted = await claude.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING, messages=ask)
    assert redacted.content[0].type == "redacted_thinking"
    replay: Any = [*ask, {"role": "assistant", "content": [redacted.content[0].model_dump()]}, *ASK]
    assert await claude.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING, messages=replay)
    replay[1]["content"][0]["data"] = "bm90IG91cnM="
    with pytest.raises(anthropic.BadRequestError, match="Invalid `data`"):
        await claude.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING, messages=replay)
    refusals = [
        ({"max_tokens": 1024, "thinking": THINKING}, "`max_tokens` must be greater"),
        ({"max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 100}}, "budget_tokens"),
        (
            {"max_tokens": 2000, "thinking": THINKING, "extra_body": {"temperature": 0.2}},
            "`temperature` may only be set to 1",
        ),
        (
            {
                "max_tokens": 2000,
                "thinking": THINKING,
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "f"},
            },
            "Thinking may not be enabled when tool_choice forces tool use",
        ),
    ]
    for extra, message in refusals:
        with pytest.raises(anthropic.BadRequestError, match=message):
            await claude.messages.create(model=MODEL, messages=ASK, **extra)
    assert sim.requests[-1].raw, "what reached the simulator is kept, refused or not"


async def test_prompt_cache_writes_then_reads_and_counts(claude: anthropic.AsyncAnthropic) -> None:
    system: Any = [{"type": "text", "text": "x" * 4000, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    first = await claude.messages.create(model=MODEL, max_tokens=50, system=system, messages=ASK)
    assert first.usage.cache_creation_input_tokens == 1000 and first.usage.cache_read_input_tokens == 0
    assert (
        first.usage.cache_creation is not None
        and first.usage.cache_creation.ephemeral_1h_input_tokens == 1000
    )
    again = await claude.messages.create(model=MODEL, max_tokens=50, system=system, messages=ASK)
    assert (again.usage.cache_read_input_tokens, again.usage.cache_creation_input_tokens) == (1000, 0)
    assert again.usage.input_tokens == first.usage.input_tokens > 0
    counted = await claude.messages.count_tokens(model=MODEL, system=system, messages=ASK)
    assert counted.input_tokens == again.usage.input_tokens + 1000
    other = await claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=50, system=system, messages=ASK
    )
    assert other.usage.cache_creation_input_tokens == 1000, "a cache is per model"
    five = [{"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks with cache_control"):
        await claude.messages.create(model=MODEL, max_tokens=50, system=five, messages=ASK)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError, match="cache_control"):
        bad: Any = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]
        await claude.messages.create(model=MODEL, max_tokens=50, system=bad, messages=ASK)
