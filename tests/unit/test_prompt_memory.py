"""The prompt memory: a request's most similar rated prompts of its task adjust the router's
estimates, so two shapes of prompt under one task name can go to different models."""

from __future__ import annotations

import numpy as np
import pytest

from turnout.routing.classifier import TaskClassifier
from turnout.routing.priors import add_priors, table_priors
from turnout.routing.prompt_memory import (
    STRENGTH,
    EvaluationRows,
    PromptMemory,
    prompt_features,
    table_residuals,
)
from turnout.routing.router import CandidateSet, Router, RouterConfig
from turnout.routing.types import Candidate, RouteRequest

MODELS = ["m-a", "m-b"]


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_similar_prompts_pass_their_residuals_on_and_unrelated_ones_do_not() -> None:
    memory = PromptMemory(k=4)
    vectors = np.stack([unit(1, 0, 0), unit(1, 0, 0), unit(0, 1, 0), unit(0, 1, 0)])
    residuals = np.array([[0.4, -0.4], [0.4, -0.4], [-0.4, 0.4], [-0.4, 0.4]])
    memory.set_prior(["qa"] * 4, vectors, residuals, MODELS)
    near_first = memory.adjustment("t1", "qa", unit(1, 0.1, 0), [*MODELS, "m-new"])
    assert near_first is not None
    assert near_first[0] > 0 > near_first[1] and near_first[2] == 0.0  # never rated: no adjustment
    near_second = memory.adjustment("t1", "qa", unit(0.1, 1, 0), MODELS)
    assert near_second is not None and near_second[0] < 0 < near_second[1]
    # nothing similar (cosine <= 0): the per-task estimate stands
    unrelated = memory.adjustment("t1", "qa", unit(0, 0, 1), MODELS)
    assert unrelated is not None and not unrelated.any()
    assert memory.adjustment("t1", "code", unit(1, 0, 0), MODELS) is None  # no rows of that task


def test_an_adjustment_is_shrunk_toward_the_task_estimate() -> None:
    memory = PromptMemory(k=1)
    memory.set_prior(["qa"], unit(1, 0)[None, :], np.array([[0.34]]), ["m-a"])
    got = memory.adjustment("t1", "qa", unit(1, 0), ["m-a"])
    assert got is not None and got[0] == pytest.approx(0.34 / (STRENGTH + 1.0))


def test_live_ratings_stay_with_their_tenant_and_task_and_the_ring_keeps_the_newest() -> None:
    memory = PromptMemory(k=8, strength=1.0, capacity=4)
    for residual in (-1.0, -1.0, 0.5, 0.5, 0.5, 0.5):  # the two oldest fall out of the ring
        memory.add("t1", "qa", unit(1, 0), "m-a", residual)
    got = memory.adjustment("t1", "qa", unit(1, 0), ["m-a"])
    assert got is not None and got[0] == pytest.approx(4 * 0.5 / (1.0 + 4))
    assert memory.adjustment("t2", "qa", unit(1, 0), ["m-a"]) is None  # another tenant sees nothing
    assert memory.adjustment("t1", "code", unit(1, 0), ["m-a"]) is None


def test_a_growing_ring_keeps_every_rating_until_it_is_full() -> None:
    memory = PromptMemory(k=1000, strength=1.0, capacity=200)
    for i in range(150):  # grows 64 -> 128 -> 200 without overwriting
        memory.add("t1", "qa", unit(1, 0), "m-a", float(i))
    got = memory.adjustment("t1", "qa", unit(1, 0), ["m-a"])
    assert got is not None and got[0] == pytest.approx(sum(range(150)) / 151.0)


def test_an_evaluations_residuals_are_against_its_own_task_means() -> None:
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    residuals = table_residuals(["qa", "qa", "code"], scores)
    assert residuals.tolist() == [[0.5, -0.5], [-0.5, 0.5], [0.0, 0.0]]
    with pytest.raises(ValueError, match="one task and one residual row per vector"):
        PromptMemory().set_prior(["qa"], np.zeros((2, 3), np.float32), residuals[:2], MODELS)


# --- the router, on real prompt features -------------------------------------------------------

SHORT = [f"What is the capital of country number {n}?" for n in range(30)]
LONG = [
    "Answer like the examples.\n"
    + "".join(f"Q: What is {a} plus {a + 1}?\nA: {2 * a + 1}\n" for a in range(n % 4 + 3))
    + f"Q: Which river flows through city number {n}?\nA:"
    for n in range(30)
]


@pytest.fixture(scope="module")
def encoder() -> TaskClassifier:
    found = TaskClassifier.if_available()
    if found is None:
        pytest.skip("needs the 'classifier' extra (wordllama)")
    return found


def test_the_router_tells_apart_two_shapes_of_one_task(encoder: TaskClassifier) -> None:
    """One task, two shapes of prompt: short questions that m-a answers and long few-shot prompts
    that m-b answers. Per task the two models are equal; with the memory, new prompts of each shape
    go to their model, and without it both shapes go to the same one."""
    texts = [*SHORT, *LONG]
    scores = np.array([[1.0, 0.0]] * len(SHORT) + [[0.0, 1.0]] * len(LONG))
    tasks = ["qa"] * len(texts)
    vectors = prompt_features(texts, encoder)
    memory = PromptMemory()
    memory.set_prior(tasks, vectors, table_residuals(tasks, scores), MODELS)
    candidates = CandidateSet(
        Candidate(m, "p", frozenset({"chat"}), 50, "low", None, 1.0, 1.0) for m in MODELS
    )
    config = RouterConfig(exploration="off")
    with_memory, without = Router(None, config, memory), Router(None, config)
    for router in (with_memory, without):
        rows = [("qa", dict(zip(MODELS, s.tolist(), strict=True))) for s in scores]
        add_priors(router.experience, table_priors(rows), 1_700_000_000.0)
    new_short, new_long = (
        "What is the capital of country number 99?",
        LONG[0].replace("number 0", "number 99"),
    )

    def pick(router: Router, text: str) -> str:
        request = RouteRequest("t1", None, "qa", prompt_vector=prompt_features([text], encoder)[0])
        return router.rank(request, candidates, now=1_700_000_000.0).ranked[0].model_id

    assert (pick(with_memory, new_short), pick(with_memory, new_long)) == ("m-a", "m-b")
    assert pick(without, new_short) == pick(without, new_long)
    decision = with_memory.rank(
        RouteRequest("t1", None, "qa", prompt_vector=prompt_features([new_short], encoder)[0]),
        candidates,
        now=1_700_000_000.0,
    )
    assert decision.ranked[0].experience is not None and decision.ranked[0].experience > 0.55
    assert "similar rated prompts +0." in decision.reason, decision.reason


def test_evaluation_rows_survive_storage_and_several_imports_merge(encoder: TaskClassifier) -> None:
    """What ``eval import`` stores and every gateway loads: a model a row did not grade stays
    ungraded (it moves no estimate), and two imports' rows merge their model columns."""
    first = EvaluationRows.of_table(
        ["qa", "qa"], SHORT[:2], [{"m-a": 1.0, "m-b": 0.0}, {"m-a": 0.0}], encoder
    )
    assert first.model_ids == MODELS and np.isnan(first.residuals[1, 1])
    assert first.residuals[:, 0].tolist() == [0.5, -0.5] and first.residuals[0, 1] == 0.0
    loaded = EvaluationRows.from_bytes(first.to_bytes())
    assert loaded.tasks == first.tasks and loaded.model_ids == first.model_ids
    assert np.allclose(loaded.vectors, first.vectors, atol=1e-3)  # stored as float16
    second = EvaluationRows.of_table(["code"], LONG[:1], [{"m-c": 0.7}], encoder)
    merged = EvaluationRows.concat([loaded, second])
    assert merged.model_ids == ["m-a", "m-b", "m-c"] and merged.tasks == ["qa", "qa", "code"]
    assert np.isnan(merged.residuals[2, 0]) and np.isnan(merged.residuals[0, 2])
    memory = PromptMemory(k=2, strength=1.0)
    merged.into(memory)
    got = memory.adjustment("t1", "qa", first.vectors[0], ["m-a", "m-b", "m-c"])
    assert got is not None and got[0] > 0 and got[2] == 0.0
    EvaluationRows.concat([]).into(memory)  # every import removed: nothing left
    assert memory.adjustment("t1", "qa", first.vectors[0], ["m-a"]) is None


def test_a_text_read_again_gets_the_same_vector_and_a_new_text_its_own(encoder: TaskClassifier) -> None:
    """Detection and the prompt memory read one request's text in turn (the second read is served
    from the first); a different text, or the same one in a batch, is never confused with it."""
    short, long = SHORT[3], LONG[3]
    first = encoder.embed([short])
    assert np.array_equal(encoder.embed([short]), first)
    other = encoder.embed([long])
    assert not np.allclose(other, first)
    assert np.allclose(encoder.embed([short, long]), np.vstack([first, other]), atol=1e-6)
    again = encoder.embed([short])
    again[0] += 1.0  # a caller changing its copy changes nothing kept
    assert np.array_equal(encoder.embed([short]), first)
