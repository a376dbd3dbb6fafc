"""Routing decision latency: ``Router.rank`` for an agent with 1,000 enabled models.

Setup: a 100,000-model catalog; 1,000 agents (100 tenants x 10), each with 1,000 enabled models; 12
tasks; experience aggregated from 10 million ratings. The ratings are drawn with numpy (each agent
rates ~30 models a task, Zipf-weighted, plus the measured agent's 300) and loaded through
``ExperienceStore.add_sums`` (the public bulk / replication primitive: a cell's count, sum and sum
of squares), so the store holds exactly what 10 million ``record`` calls would leave (up to the
decay of their timestamps); an imported evaluation grades 50 of the agent's models on every task,
with their loadings on each task's common factor, so draws take the shared-error path. Then 5,000
decisions for the measured agent, random task, one rating recorded every 10 decisions (live
feedback), Thompson exploration on; then the same for the full ranking, a reused tuple, a plain
list, requests weighed over three tasks (``task_mix``, as an imported evaluation's learned tasks
give them), and requests with prompt features looked up in a full prompt memory (an evaluation's
5,600 rows over the 12 tasks, grading 50 of the agent's models, and a full ring of live ratings for
every task), one path at a time. Reports p50/p99/max and the same-run baseline (sorting 1,000
floats), PASS/FAIL against p99 <= 1 ms.

    .venv/bin/python bench/routing.py [--decisions 5000] [--ratings 10000000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from turnout.routing.experience import ExperienceStore
from turnout.routing.prompt_memory import LIVE_CAPACITY, MARKERS, PromptMemory
from turnout.routing.router import CandidateSet, Router, RouterConfig
from turnout.routing.types import Candidate, Decision, RouteRequest

TASKS = [
    "code", "math", "reasoning", "research", "analysis", "summarization", "translation", "general",
    "vision", "extraction", "classification", "chat",
]  # fmt: skip
CAPS = ["chat", "function_calling", "vision", "json_mode", "long_context", "audio"]
CATALOG, AGENTS, ENABLED, PER_CELL, TARGET_RATED = 100_000, 1_000, 1_000, 30, 300


def catalog(rng: np.random.Generator) -> list[Candidate]:
    """100,000 models with random capabilities, priorities, context windows and prices."""
    caps = rng.random((CATALOG, len(CAPS))) < [1.0, 0.6, 0.3, 0.5, 0.2, 0.05]
    prio = rng.integers(10, 91, CATALOG)
    ctx = rng.choice([8_192, 32_768, 128_000, 1_000_000], CATALOG)
    price = np.round(rng.lognormal(0.0, 1.2, CATALOG), 3)
    return [
        Candidate(
            f"p{i % 60}/model-{i}", f"p{i % 60}", frozenset(np.array(CAPS)[caps[i]].tolist()),
            int(prio[i]), "low", int(ctx[i]), float(price[i]), float(price[i] * 3),
        )
        for i in range(CATALOG)
    ]  # fmt: skip


def load_experience(
    store: ExperienceStore, ids: list[str], enabled: np.ndarray, ratings: int, now: float
) -> int:
    """Draw ``ratings`` ratings over (agent, task, model) cells and add them as sums; returns cells."""
    rng = np.random.default_rng(1)
    agents = np.arange(AGENTS)
    # cells: every agent rates PER_CELL of its models on each task; agent 0 (measured) rates TARGET_RATED
    rows = []
    for a in agents:
        k = TARGET_RATED if a == 0 else PER_CELL
        for t in range(len(TASKS)):
            rows.append((a, t, rng.choice(enabled[a], k, replace=False)))
    weights = np.concatenate([1.0 / np.arange(1, len(m) + 1) for _, _, m in rows])  # Zipf within a cell
    counts = rng.multinomial(ratings, weights / weights.sum())
    quality = rng.beta(4, 2, CATALOG)  # each model's true mean
    at = now - 3_600.0
    pos = cells = 0
    for a, t, models in rows:
        for m in models.tolist():
            n = int(counts[pos])
            pos += 1
            if n:
                mean = quality[m]
                sums = (n, n * mean, n * (mean * mean + 0.04))  # ratings with sd 0.2 around the mean
                store.add_sums(f"tenant-{a // 10}", f"agent-{a}", TASKS[t], ids[m], *sums, at)
                cells += 1
    return cells


FEATURES, EVALUATION_ROWS, GRADED = 256 + MARKERS, 5_600, 50


def prompt_memory(rng: np.random.Generator, ids: list[str]) -> PromptMemory:
    """A full memory: an evaluation's rows over every task, grading 50 of the agent's models, and
    a full ring of live ratings for every task."""
    memory = PromptMemory()
    vectors = rng.standard_normal((EVALUATION_ROWS, FEATURES)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    residuals = rng.normal(0.0, 0.2, (EVALUATION_ROWS, GRADED)).astype(np.float32)
    memory.set_prior(
        [TASKS[i % len(TASKS)] for i in range(EVALUATION_ROWS)], vectors, residuals, ids[:GRADED]
    )
    live = rng.standard_normal((LIVE_CAPACITY, FEATURES)).astype(np.float32)
    live /= np.linalg.norm(live, axis=1, keepdims=True)
    for task in TASKS:
        for i in range(LIVE_CAPACITY):
            memory.add("tenant-0", task, live[i], ids[i % len(ids)], float(rng.normal(0.0, 0.2)))
    return memory


def import_evaluation(store: ExperienceStore, ids: list[str], rng: np.random.Generator, now: float) -> None:
    """An imported evaluation's priors: 400 graded prompts of every task for 50 of the agent's
    models, with their loadings on each task's common factor (so every draw takes the shared path)."""
    for task in TASKS:
        for model_id in ids[:GRADED]:
            mean = float(rng.beta(4, 2))
            store.add_prior(task, model_id, 400.0, 400.0 * mean, 400.0 * mean, now - 7_200.0)
            store.set_loading(task, model_id, float(rng.uniform(0.3, 0.9)))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--ratings", type=int, default=10_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    models = catalog(rng)
    ids = [c.model_id for c in models]
    enabled = np.stack([rng.choice(CATALOG, ENABLED, replace=False) for _ in range(AGENTS)])
    router = Router()
    now = time.time()
    cells = load_experience(router.experience, ids, enabled, args.ratings, now)
    candidates = CandidateSet(models[i] for i in enabled[0].tolist())  # built once per agent and snapshot
    import_evaluation(router.experience, candidates.ids, rng, now)
    print(f"setup: {CATALOG:,} models, {AGENTS:,} agents x {ENABLED:,} enabled models")
    print(f"  {args.ratings:,} ratings in {cells:,} agent cells, {time.perf_counter() - t0:.1f}s")
    gc.collect()
    gc.freeze()  # the long-lived catalog and aggregates leave the GC's young generations (as at startup)

    py = random.Random(0)
    floats = [py.random() for _ in range(ENABLED)]
    caps = [frozenset(), frozenset({"chat"}), frozenset({"function_calling"})]
    requests = [
        RouteRequest(
            "tenant-0", "agent-0", py.choice(TASKS), py.choice(caps), prompt_tokens=py.randint(10, 4_000)
        )
        for _ in range(args.decisions)
    ]
    # as an imported evaluation's learned tasks give them: each request may also be two other tasks
    mixed = [
        replace(r, task_mix=tuple((t, w) for t, w in zip(py.sample(TASKS, 2), (0.25, 0.1), strict=True)))
        for r in requests
    ]
    full_router = Router(router.experience, RouterConfig(max_ranked=None))
    memory_router = Router(router.experience, router.config, prompt_memory(rng, candidates.ids))
    unit = rng.standard_normal((args.decisions, FEATURES)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    remembered = [replace(r, prompt_vector=v) for r, v in zip(requests, unit, strict=True)]
    as_tuple, as_list = tuple(candidates), list(candidates)
    for request in requests[:200]:  # warm-up: caches of slots and fits
        router.rank(request, candidates)
    paths: dict[str, tuple[Router, Sequence[Candidate]]] = {
        "default": (router, candidates),
        "full": (full_router, candidates),
        "tuple": (router, as_tuple),
        "list": (router, as_list),
        "mixed": (router, candidates),
        "memory": (memory_router, candidates),
    }
    runs: dict[str, list[float]] = {name: [] for name in [*paths, "base"]}
    decision: Decision | None = None
    for name, (rt, cands) in paths.items():  # one path at a time: none pays for another's garbage
        batch = {"list": requests[:500], "mixed": mixed, "memory": remembered}.get(name, requests)
        for i, request in enumerate(batch):
            t = time.perf_counter_ns()
            decision = rt.rank(request, cands)
            runs[name].append((time.perf_counter_ns() - t) / 1e6)
            if i % 10 == 0:  # live feedback: one rating every 10 decisions
                chosen = decision.ranked[0].model_id
                router.experience.record(
                    "tenant-0", "agent-0", request.task_type, chosen, py.random(), time.time()
                )
            if name == "default":
                t = time.perf_counter_ns()
                sorted(floats)
                runs["base"].append((time.perf_counter_ns() - t) / 1e6)
    b50 = percentile(runs["base"], 50)
    print(f"baseline, sorted() of 1,000 floats: p50 {b50 * 1000:.1f} us")
    print(f"rank(), {len(requests):,} decisions, Thompson exploration on, one rating recorded every 10:")
    labels = {
        "default": f"CandidateSet, top {router.config.max_ranked} ranked",
        "full": "CandidateSet, all ranked",
        "tuple": "same tuple each time",
        "list": "plain list (no caching)",
        "mixed": "CandidateSet, a mix of 3 tasks",
        "memory": "CandidateSet, prompt memory",
    }
    for name, label in labels.items():
        lat = runs[name]
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        print(f"  {label:34s} p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {max(lat):.3f} ms  ({p50 / b50:.0f}x)")
    assert decision is not None
    print(f"  last: {len(decision.ranked)} ranked, {len(decision.filtered)} filtered; {decision.reason}")
    for name in ("default", "mixed", "memory"):
        p99 = percentile(runs[name], 99)
        print(f"{'PASS' if p99 <= 1.0 else 'FAIL'}: p99 {p99:.3f} ms vs target 1 ms ({labels[name]})")


if __name__ == "__main__":
    main()
