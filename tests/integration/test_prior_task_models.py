"""Every imported evaluation's tasks reach detection through the prior loader, on SQLite and
PostgreSQL: a second import (other tasks, or some of the same) does not make the gateway forget the
first one's, and removing an import takes only its tasks away."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from turnout.container import Container
from turnout.routing.classifier import TaskClassifier
from turnout.routing.detection import detect_task
from turnout.routing.priors import PriorCell, PriorLoader, remove_source, save_priors
from turnout.routing.task_model import TaskModel

Table = list[tuple[str, str]]  # (task, prompt)

FUNCS = ["parses a date string", "merges two sorted lists", "counts the words in a file", "reverses a string"]
CODING: Table = [
    row
    for n in range(30)
    for row in (
        ("code_gen", f"Write a Python function that {FUNCS[n % 4]} and returns the result {n}."),
        ("code_review", f"Review this code for bugs:\ndef f{n}(items):\n    return items[{n}] + len(items)"),
    )
]
SUPPORT: Table = [
    row
    for n in range(30)
    for row in (
        ("billing", f"Why was my credit card charged twice for invoice #{1000 + n} this month?"),
        ("refund", f"I want a refund for order {5000 + n}: the item arrived broken and I returned it."),
    )
]
ACCOUNTS: Table = [  # shares ``billing`` with SUPPORT, phrased its own way
    row
    for n in range(30)
    for row in (
        ("billing", f"Which payment method is on file for the monthly invoice of account {n}?"),
        ("password_reset", f"I forgot my password for account {n}, how do I reset it and log in?"),
    )
]

LIVE = {  # prompts like each table's, none of them in it
    "Write a Python function that merges two dictionaries and returns the result.": "code_gen",
    "Review this code for bugs:\ndef g(items):\n    return items[3] - len(items)": "code_review",
    "Why was my credit card charged twice for invoice #4821 last month?": "billing",
    "I want a refund for order 9917: the item arrived broken.": "refund",
}


@pytest.fixture(scope="module")
def encoder() -> TaskClassifier | None:
    """The word vectors ``eval import`` trains with, when the extra is installed (as it does)."""
    return TaskClassifier.if_available()


def model(table: Table, encoder: TaskClassifier | None) -> TaskModel:
    return TaskModel.train([p for _, p in table], [t for t, _ in table], encoder)


def priors(table: Table) -> list[PriorCell]:
    return [PriorCell(task, "m", 30, 18, 12) for task in sorted({t for t, _ in table})]


def detected(loader: PriorLoader, prompts: Sequence[str]) -> list[str]:
    learned = loader.task_models
    return [
        detect_task({"messages": [{"role": "user", "content": p}]}, learned=learned).task_type
        for p in prompts
    ]


async def remove(container: Container, source: str) -> None:
    """``turnout eval remove``: its rows gone from the three tables, in one transaction."""
    assert await remove_source(container.sessions, source) is not None


async def test_a_second_import_keeps_the_first_imports_tasks_detected(
    container: Container, encoder: TaskClassifier | None
) -> None:
    """Only the newest import's classifier was loaded: after a support evaluation, coding prompts
    were no longer detected as the coding evaluation's tasks, so its priors went unused."""
    sessions = container.sessions
    loader = PriorLoader(container.routing.router.experience, encoder)
    await save_priors(sessions, "coding", priors(CODING), model(CODING, encoder))
    await loader.refresh(sessions)
    assert detected(loader, list(LIVE)[:2]) == ["code_gen", "code_review"]

    await save_priors(sessions, "support", priors(SUPPORT), model(SUPPORT, encoder))
    await loader.refresh(sessions)
    assert detected(loader, list(LIVE)) == list(LIVE.values())

    await remove(container, "support")  # the other import's tasks stay; the removed one's go
    await loader.refresh(sessions)
    assert detected(loader, list(LIVE)[:2]) == ["code_gen", "code_review"]
    assert not {"billing", "refund"} & set(detected(loader, list(LIVE)[2:]))

    await remove(container, "coding")
    await loader.refresh(sessions)
    assert loader.task_models is None
    assert not {"code_gen", "code_review"} & set(detected(loader, list(LIVE)[:2]))


async def test_two_imports_that_share_a_task_name_both_detect_it(
    container: Container, encoder: TaskClassifier | None
) -> None:
    """A task both evaluations name is that one task whichever import's prompts a live one is like;
    each import's own tasks are still its own."""
    sessions = container.sessions
    loader = PriorLoader(container.routing.router.experience, encoder)
    await save_priors(sessions, "support", priors(SUPPORT), model(SUPPORT, encoder))
    await save_priors(sessions, "accounts", priors(ACCOUNTS), model(ACCOUNTS, encoder))
    await save_priors(sessions, "coding", priors(CODING), model(CODING, encoder))
    await loader.refresh(sessions)
    prompts = {
        "Why was my credit card charged twice for invoice #4821 last month?": "billing",
        "Which payment method is on file for the monthly invoice of account 77?": "billing",
        "I forgot my password for account 77, how do I reset it and log in?": "password_reset",
        "I want a refund for order 9917: the item arrived broken.": "refund",
        "Write a Python function that merges two dictionaries and returns the result.": "code_gen",
    }
    assert detected(loader, list(prompts)) == list(prompts.values())
