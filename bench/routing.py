"""Routing decision latency: ``Router.rank`` for an agent with 1,000 enabled models.

Setup: a 100,000-model catalog; 1,000 agents (100 tenants x 10), each with 1,000 enabled models;
12 tasks; experience aggregated from 10 million ratings. The ratings are drawn with numpy (each
agent rates ~30 models a task, Zipf-weighted, plus the measured agent's 300) and loaded through
``ExperienceStore.add_sums`` (the public bulk / replication primitive: a cell's count, sum and sum
of squares), so the store holds exactly what 10 million ``record`` calls would leave (up to the
decay of their timestamps). Then 5,000 decisions for the measured agent, random task, one rating
recorded every 10 decisions (live feedback), Thompson exploration on. Reports p50/p99/max and
the same-run baseline (sorting 1,000 floats), PASS/FAIL against p99 <= 1 ms.

    .venv/bin/python bench/routing.py [--decisions 5000] [--ratings 10000000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time

import numpy as np

from turnout.routing.experience import ExperienceStore
from turnout.routing.router import CandidateSet, Router
from turnout.routing.types import Candidate, RouteRequest

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
            f"p{i % 60}/model-{i}", f"p{i % 60}", frozenset(c for c, on in zip(CAPS, caps[i], strict=True) if on),
            int(prio[i]), "low", int(ctx[i]), float(price[i]), float(price[i] * 3),
        )
        for i in range(CATALOG)
    ]  # fmt: skip


def load_experience(store: ExperienceStore, ids: list[str], enabled: np.ndarray, ratings: int, now: float) -> int:
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
                total = n * mean
                store.add_sums(f"tenant-{a // 10}", f"agent-{a}", TASKS[t], ids[m], n, total, total * mean + n * 0.04, at)  # fmt: skip
                cells += 1
    return cells


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    print(f"setup: {CATALOG:,} models, {AGENTS:,} agents x {ENABLED:,} enabled, {args.ratings:,} ratings "
          f"in {cells:,} agent cells, {time.perf_counter() - t0:.1f}s")  # fmt: skip
    gc.collect()
    gc.freeze()  # the long-lived catalog and aggregates leave the GC's young generations (as at startup)

    py = random.Random(0)
    floats = [py.random() for _ in range(ENABLED)]
    requests = [
        RouteRequest("tenant-0", "agent-0", py.choice(TASKS), frozenset(py.sample(["chat", "function_calling"], py.randint(0, 1))),  # fmt: skip
                     prompt_tokens=py.randint(10, 4_000))
        for _ in range(args.decisions)
    ]  # fmt: skip
    for request in requests[:200]:  # warm-up: caches of slots and fits
        router.rank(request, candidates)
    lat: list[float] = []
    base: list[float] = []
    plain: list[float] = []
    as_list = list(candidates)
    for i, request in enumerate(requests):
        t = time.perf_counter_ns()
        decision = router.rank(request, candidates)
        lat.append((time.perf_counter_ns() - t) / 1e6)
        t = time.perf_counter_ns()
        sorted(floats)
        base.append((time.perf_counter_ns() - t) / 1e6)
        if i % 10 == 0:
            top = decision.ranked[0].model_id
            router.experience.record("tenant-0", "agent-0", request.task_type, top, py.random(), time.time())
        if i % 10 == 5:
            t = time.perf_counter_ns()
            router.rank(request, as_list)
            plain.append((time.perf_counter_ns() - t) / 1e6)
    p50, p99, worst = percentile(lat, 50), percentile(lat, 99), max(lat)
    b50 = percentile(base, 50)
    print(f"rank() with a CandidateSet, {len(lat):,} decisions: p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {worst:.3f} ms")
    print(f"  ranked {len(decision.ranked)} candidates, {len(decision.filtered)} filtered; reason: {decision.reason}")
    print(f"rank() with a plain list (no caching), {len(plain):,} decisions: p50 {percentile(plain, 50):.3f} ms  "
          f"p99 {percentile(plain, 99):.3f} ms")  # fmt: skip
    print(f"baseline sorted(1,000 floats): p50 {b50 * 1000:.1f} us; rank p50 = {p50 / b50:.0f}x baseline")
    print(f"{'PASS' if p99 <= 1.0 else 'FAIL'}: p99 {p99:.3f} ms vs target 1 ms")


if __name__ == "__main__":
    main()
