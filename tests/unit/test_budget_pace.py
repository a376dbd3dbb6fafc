"""How far ahead of an even pace a budget spends, and how much more routing then weighs cost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from turnout.domain.budgets import MAX_TRADEOFF_FACTOR, pace, tradeoff_factor


def test_pace_is_the_share_spent_over_the_share_of_the_period_gone() -> None:
    noon = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert pace("daily", 0.5, noon) == pytest.approx(1.0)
    assert pace("daily", 0.75, noon) == pytest.approx(1.5)
    assert pace("weekly", 0.5, datetime(2030, 1, 3, 12, tzinfo=UTC)) == pytest.approx(1.0)  # Mon-Thu noon
    assert pace("monthly", 0.1, datetime(2030, 2, 15, tzinfo=UTC)) == pytest.approx(0.2)  # 14 of 28 days


def test_just_after_a_reset_the_period_counts_as_five_percent_gone() -> None:
    midnight = datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert pace("daily", 0.01, midnight) == pytest.approx(0.2)


def test_a_total_budget_has_no_pace() -> None:
    assert pace("total", 0.9, datetime(2030, 1, 1, tzinfo=UTC)) is None


def test_the_factor_is_the_square_of_the_pace_above_one_and_capped() -> None:
    assert tradeoff_factor(0.3) == tradeoff_factor(1.0) == 1.0
    assert tradeoff_factor(2.0) == pytest.approx(4.0)
    assert tradeoff_factor(100.0) == MAX_TRADEOFF_FACTOR
