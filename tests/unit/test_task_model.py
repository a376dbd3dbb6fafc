"""Tasks learned from an imported evaluation: trained on labelled prompts, saved and loaded, sure or
abstaining, and consulted by detection after tools and attachments but before keywords."""

from __future__ import annotations

import pytest

from turnout.routing.detection import detect_task
from turnout.routing.task_model import TaskModel

TRIVIA = [f"Q: Which river flows through city number {n}? A:" for n in range(40)]
GRIDS = [
    f"There are {n % 5 + 3} houses in a row. Each person owns a pet. Who owns the fish?" for n in range(40)
]


@pytest.fixture(scope="module")
def model() -> TaskModel:
    return TaskModel.train([*TRIVIA, *GRIDS], ["trivia"] * 40 + ["grid"] * 40)


def test_it_labels_new_prompts_like_its_examples_and_survives_a_round_trip(model: TaskModel) -> None:
    unseen = ["Q: Which river flows through Vienna? A:", "There are 4 houses in a row. Who owns the zebra?"]
    assert model.predict_many(unseen) == ["trivia", "grid"]
    loaded = TaskModel.from_bytes(model.to_bytes(), None)
    assert loaded.predict_many(unseen) == ["trivia", "grid"]
    guess = loaded.predict(unseen[0])
    assert guess is not None and guess[0] == "trivia" and guess[1] > 0.5


def test_it_abstains_when_unsure(model: TaskModel) -> None:
    sure = TaskModel(model.labels, model.weights, model.bias, False, None, min_probability=0.999)
    assert sure.predict("Completely unrelated words about gardening and tomatoes") is None


def test_training_needs_two_tasks_and_one_label_a_prompt() -> None:
    with pytest.raises(ValueError, match="two tasks"):
        TaskModel.train(TRIVIA, ["trivia"] * len(TRIVIA))
    with pytest.raises(ValueError, match="one task per prompt"):
        TaskModel.train(TRIVIA, ["trivia", "grid"])


def test_detection_asks_the_learned_tasks_before_keywords(model: TaskModel) -> None:
    def body(text: str, **extra: object) -> dict[str, object]:
        return {"messages": [{"role": "user", "content": text}], **extra}

    # "translate" is a keyword of the built-in maps; the learned tasks are asked first
    prompt = "Q: Which river flows through Vienna? Translate your answer. A:"
    assert detect_task(body(prompt)).source == "keyword"
    learned = detect_task(body(prompt), learned=model)
    assert (learned.task_type, learned.source) == ("trivia", "evaluation") and 0 < learned.confidence <= 0.8
    assert detect_task(body(prompt), explicit="math", learned=model).task_type == "math"
    tools = [{"type": "function", "function": {"name": "code_execute"}}]
    assert detect_task(body(prompt, tools=tools), learned=model).source == "tool"
