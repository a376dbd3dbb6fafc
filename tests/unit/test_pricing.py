"""A call's cost from its usage: cached tokens at the cache prices instead of the input price,
reasoning at the output price, a missing price stood in for and the cost then marked estimated."""

from __future__ import annotations

from decimal import Decimal

from turnout.domain.pricing import TokenCounts, cost_of
from turnout.domain.snapshot import ModelEntry
from turnout.translate.anthropic import openai_usage


def _model(
    price_in: float | None = 2.5,
    price_out: float | None = 10.0,
    read: float | None = 1.25,
    write: float | None = 3.75,
) -> ModelEntry:
    return ModelEntry(
        "p/m", "p", "m", "m", "chat", frozenset({"text"}), 50, "standard", None, price_in, price_out, True,
        pricing_cache_read=read, pricing_cache_write=write,
    )  # fmt: skip


USAGE = {
    "prompt_tokens": 1_000,
    "completion_tokens": 500,
    "prompt_tokens_details": {"cached_tokens": 600, "cache_creation_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 200},
}


def test_cached_and_written_tokens_replace_the_input_price_and_reasoning_is_output() -> None:
    tokens = TokenCounts.of(USAGE)
    assert tokens == TokenCounts(prompt=1_000, completion=500, cached=600, cache_write=100, reasoning=200)
    cost = cost_of(_model(), tokens)
    # 300 uncached x 2.5 + 600 read x 1.25 + 100 written x 3.75 + 500 out (200 reasoning among them) x 10
    assert cost.usd == Decimal("0.006875") and cost.estimated is False


def test_without_cache_prices_cached_tokens_cost_the_input_price_and_the_cost_is_an_estimate() -> None:
    cost = cost_of(_model(read=None, write=None), TokenCounts.of(USAGE))
    assert cost.usd == Decimal("0.0075") and cost.estimated is True  # 1000 x 2.5 + 500 x 10
    plain = cost_of(_model(read=None, write=None), TokenCounts(prompt=1_000, completion=500))
    assert plain.usd == Decimal("0.0075") and plain.estimated is False, "no cached tokens: nothing stood in"


def test_estimated_usage_or_a_missing_price() -> None:
    assert cost_of(_model(), TokenCounts(prompt=10), usage_estimated=True).estimated is True
    no_output = cost_of(_model(price_out=None), TokenCounts(prompt=1_000, completion=10))
    assert no_output.usd == Decimal("0.0025") and no_output.estimated is True
    unknown = cost_of(_model(price_in=None), TokenCounts(prompt=1_000))
    assert unknown.usd is None


def test_prices_are_exact_to_eight_decimals() -> None:
    cost = cost_of(
        _model(price_in=0.15, price_out=0.6, read=0.075), TokenCounts(prompt=7, completion=3, cached=3)
    )
    # 4 x 0.15 + 3 x 0.075 + 3 x 0.6 = 2.625 per 1M: 0.000002625 USD, rounded half-even to 8 places
    assert cost.usd == Decimal("0.00000262")


def test_odd_counts_are_capped_so_nothing_is_billed_twice_or_negative() -> None:
    tokens = TokenCounts.of({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 50}, "x": None})
    assert cost_of(_model(), tokens).usd == Decimal("0.0000125")  # the 10 prompt tokens, all read from cache
    assert TokenCounts.of({"prompt_tokens": "7", "completion_tokens": -1}) == TokenCounts()


def test_anthropic_usage_prices_its_cache_reads_and_writes() -> None:
    usage = openai_usage(
        {
            "input_tokens": 300,
            "output_tokens": 500,
            "cache_read_input_tokens": 600,
            "cache_creation_input_tokens": 100,
        }
    )
    tokens = TokenCounts.of(usage)
    assert (tokens.prompt, tokens.cached, tokens.cache_write) == (1_000, 600, 100)
    assert cost_of(_model(), tokens).usd == Decimal("0.006875")
