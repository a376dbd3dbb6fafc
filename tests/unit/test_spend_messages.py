"""What a refused caller reads: a budget's amount as dollars, never rounded to nothing."""

from __future__ import annotations

import pytest

from turnout.domain.pricing import format_usd
from turnout.spend.guard import duration


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (5, "$5.00"),
        (1234.567, "$1,234.57"),
        (0.5, "$0.50"),
        (0.016443, "$0.016443"),  # not $0.02: a refusal names the budget's amount as it was set
        (0.00002, "$0.00002"),
        (0.00000001, "$0.00000001"),
    ],
)
def test_a_sub_cent_budget_is_shown_with_its_digits(amount: float, shown: str) -> None:
    assert format_usd(amount) == shown


@pytest.mark.parametrize(("seconds", "shown"), [(0.25, "250ms"), (1, "1s"), (59.2, "1m0s"), (360, "6m0s")])
def test_resets_are_written_as_openai_writes_them(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown
