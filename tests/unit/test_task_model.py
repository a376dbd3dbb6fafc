"""Tasks learned from an imported evaluation: trained on labelled prompts, saved and loaded, sure or
abstaining, and consulted by detection after tools and attachments but before keywords."""

from __future__ import annotations

import pytest

from turnout.routing.detection import detect_task
from turnout.routing.task_model import TaskModel, TaskModels

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


def test_a_prompt_unlike_the_evaluations_is_out_of_its_domain(model: TaskModel) -> None:
    """Two tasks' softmax names one of them for anything: only prompts about as close to a task's
    centroid as its own are (all but its farthest 1%) are the evaluation's; the domain survives a
    round trip, and a model stored without one keeps every prompt."""
    for text in ("hi", "Write a Python function that reverses a linked list", "Translate 'good morning'"):
        assert model.mixture(text) == [], text
    assert model.mixture("Q: Which river flows through Vienna? A:")[0][0] == "trivia"
    loaded = TaskModel.from_bytes(model.to_bytes(), None)
    assert loaded.floor == model.floor and loaded.mixture("hi") == []
    legacy = TaskModel(model.labels, model.weights, model.bias, False, None)
    assert legacy.mixture("hi") != []


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


def test_detection_carries_the_other_tasks_a_prompt_may_be() -> None:
    """The learned tasks' likeliest others ride along with the detected task (for routing); when
    they are unsure and keywords decide, all of them do, and the keyword task keeps what is left."""
    three = TaskModel.train(
        [*TRIVIA, *GRIDS, *(f"Solve for x: {n}x + 3 = {n + 9}" for n in range(40))],
        ["trivia"] * 40 + ["grid"] * 40 + ["algebra"] * 40,
    )
    sure = detect_task({"messages": [{"role": "user", "content": TRIVIA[0]}]}, learned=three)
    mixture = three.mixture(TRIVIA[0])
    assert sure.task_type == "trivia" == mixture[0][0]
    assert sure.task_mix == tuple(m for m in mixture if m[0] != "trivia")
    assert all(p >= 0.05 for _, p in sure.task_mix) and len(mixture) <= 3
    assert [p for _, p in mixture] == sorted((p for _, p in mixture), reverse=True)
    # unsure (it would need 0.999): "translate" decides, and the learned tasks weigh in beside it
    doubtful = TaskModel(three.labels, three.weights, three.bias, False, None, min_probability=0.999)
    prompt = "Translate into German: which river flows past the houses? Solve it."
    unsure = detect_task({"messages": [{"role": "user", "content": prompt}]}, learned=doubtful)
    assert unsure.source == "keyword" and unsure.task_type != "trivia"
    assert unsure.task_mix == tuple(doubtful.mixture(prompt)) and 0 < sum(p for _, p in unsure.task_mix) <= 1
    # without an imported evaluation there is no mix
    assert detect_task({"messages": [{"role": "user", "content": prompt}]}).task_mix == ()


def test_several_evaluations_tasks_are_asked_together(model: TaskModel) -> None:
    """Each import's model names its own tasks for prompts like its table's; a prompt like none is
    left to built-in detection; a model stored without a domain (it keeps every prompt) answers only
    where no other model's domain holds the prompt, so an old import cannot take a new one's prompts."""
    algebra = TaskModel.train(
        [
            *(f"Solve for x: {n}x + 3 = {n + 9}" for n in range(40)),
            *(f"Factor x^2 + {n}x" for n in range(40)),
        ],
        ["linear"] * 40 + ["factoring"] * 40,
    )
    both = TaskModels((algebra, model))
    assert both.labels == ["factoring", "grid", "linear", "trivia"]

    def task(learned: TaskModels, text: str) -> str:
        return detect_task({"messages": [{"role": "user", "content": text}]}, learned=learned).task_type

    assert task(both, "Q: Which river flows through Vienna? A:") == "trivia"
    assert task(both, "Solve for x: 7x + 3 = 24") == "linear"
    assert task(both, "hey, how's it going?") not in both.labels
    legacy = TaskModel(model.labels, model.weights, model.bias, False, None)  # stored before domains
    with_legacy = TaskModels((legacy, algebra))
    assert task(with_legacy, "Solve for x: 7x + 3 = 24") == "linear"
    assert with_legacy.mixture("hi") == legacy.mixture("hi") != []
