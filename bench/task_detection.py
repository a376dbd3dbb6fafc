"""Task detection quality and cost, on ``bench/data/task_detection.jsonl``.

Prints accuracy, macro-F1 (over the gold classes) and a per-class table for the keyword detector,
and for the optional embedding classifier when the ``classifier`` extra is installed, plus the time
``detect_task`` takes per request as a ratio to ``orjson.loads`` of the same body, in the same run.

    .venv/bin/python bench/task_detection.py                     # evaluate and time
    .venv/bin/python bench/task_detection.py --train-classifier  # refit routing/task_head.json
    .venv/bin/python bench/task_detection.py --build DIR         # rebuild the benchmark rows from
                                                                 # DIR/outcomes-train.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from turnout.routing.detection import detect_task

DATA = Path(__file__).with_name("data") / "task_detection.jsonl"
SEED = 20_240_601
TEST_FRACTION = 0.3
# The 14 benchmarks of the routing data onto Turnout task types. The groups also follow how the 9
# models rank on them: per-benchmark ranking profiles correlate 0.5-1.0 (mostly >= 0.7) inside a group,
# and -0.2 to 0.4 between the qa pair and the reasoning sets.
BENCHMARK_LABEL = {
    "math": "math",
    "gsm8k": "math",
    "agentverse-mgsm": "math",
    "mbpp": "code",
    "human_eval": "code",
    "natural_qa": "qa",
    "trivia_qa": "qa",
    "mmlu": "reasoning",
    "gpqa": "reasoning",
    "arc_challenge": "reasoning",
    "commonsense_qa": "reasoning",
    "openbook_qa": "reasoning",
    "agentverse-logicgrid": "reasoning",
    "commongen": "creative",
}


def load(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def body_of(row: dict[str, Any]) -> dict[str, Any]:
    if "body" in row:
        return row["body"]
    return {"model": "auto", "messages": [{"role": "user", "content": row["prompt"]}]}


def last_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0].get("text", "")


def build(source_dir: Path) -> None:
    """Rewrite the benchmark rows from the routing data, keeping the hand-written rows."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (source_dir / "outcomes-train.jsonl").read_text().split("\n"):
        if not line.strip():
            continue
        item = json.loads(line)
        by_task[item["task"]].append(item)
    rng = random.Random(SEED)
    rows = []
    for task in sorted(by_task):
        items = sorted(by_task[task], key=lambda i: i["id"])
        rng.shuffle(items)
        n_test = round(len(items) * TEST_FRACTION)
        for k, item in enumerate(items):
            split = "test" if k < n_test else "train"
            rows.append(
                {"prompt": item["prompt"], "label": BENCHMARK_LABEL[task], "source": task, "split": split}
            )
    kept = [r for r in load() if r.get("source") == "handwritten"] if DATA.exists() else []
    DATA.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*rows, *kept]))
    print(f"wrote {len(rows)} benchmark rows and kept {len(kept)} hand-written rows in {DATA}")


def scores(
    gold: Sequence[str], pred: Sequence[str]
) -> tuple[float, float, dict[str, tuple[float, float, float, int]]]:
    """Accuracy, macro-F1 over the gold classes, and per class (precision, recall, F1, support)."""
    table = {}
    for label in sorted(set(gold)):
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        n_pred, n_gold = pred.count(label), gold.count(label)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        table[label] = (precision, recall, f1, n_gold)
    accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    return accuracy, statistics.fmean(v[2] for v in table.values()), table


def report(title: str, gold: Sequence[str], systems: dict[str, Sequence[str]], per_class: bool) -> None:
    print(f"\n## {title} (n={len(gold)})")
    results = {name: scores(gold, pred) for name, pred in systems.items()}
    for name, (accuracy, macro_f1, _) in results.items():
        print(f"{name:<22} accuracy {accuracy:6.1%}   macro-F1 {macro_f1:6.1%}")
    if per_class:
        names = list(results)
        print(f"\n{'class':<14}{'support':>8}" + "".join(f"  {n[:18]:>18} P/R/F1" for n in names))
        for label in results[names[0]][2]:
            cells = "".join(
                "  {:>6.0%}{:>6.0%}{:>6.0%}      ".format(*results[n][2][label][:3]) for n in names
            )
            print(f"{label:<14}{results[names[0]][2][label][3]:>8}{cells}")


def per_source(rows: list[dict[str, Any]], systems: dict[str, Sequence[str]]) -> None:
    print("\n## accuracy per source benchmark (test split)")
    print(f"{'source':<22}{'label':<11}{'n':>5}" + "".join(f"{n[:22]:>24}" for n in systems))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[row["source"]].append(i)
    for source, idx in sorted(groups.items()):
        label = rows[idx[0]]["label"]
        accs = [sum(pred[i] == label for i in idx) / len(idx) for pred in systems.values()]
        print(f"{source:<22}{label:<11}{len(idx):>5}" + "".join(f"{a:>24.0%}" for a in accs))


def load_classifier() -> Any:
    from turnout.routing.classifier import TaskClassifier

    return TaskClassifier() if TaskClassifier.available() else None


def train_classifier(rows: list[dict[str, Any]]) -> None:
    from turnout.routing.classifier import HEAD_PATH, TaskClassifier, train_head

    train = [r for r in rows if r["split"] == "train" and "prompt" in r]
    features = TaskClassifier().embed([r["prompt"] for r in train])
    head = train_head(features, [r["label"] for r in train])
    HEAD_PATH.write_text(json.dumps(head, separators=(",", ":")) + "\n")
    print(f"trained on {len(train)} prompts, classes {head['labels']}; wrote {HEAD_PATH}")


def time_per_request(
    bodies: list[dict[str, Any]], detect: Callable[[dict[str, Any]], Any], rounds: int
) -> None:
    """Interleave orjson.loads(body) and detect(body) per request so both see the same machine state."""
    raw = [orjson.dumps(b) for b in bodies]
    base: list[int] = []
    cost: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for body, data in zip(bodies, raw, strict=True):
            t0 = clock()
            orjson.loads(data)
            t1 = clock()
            detect(body)
            t2 = clock()
            base.append(t1 - t0)
            cost.append(t2 - t1)

    def p99(xs: list[int]) -> float:
        return sorted(xs)[int(0.99 * (len(xs) - 1))]

    mean_ratio = statistics.fmean(cost) / statistics.fmean(base)
    print(
        f"  mean {statistics.fmean(cost) / 1e3:7.1f} us = {mean_ratio:5.1f}x orjson.loads"
        f"   p99 {p99(cost) / 1e3:7.1f} us = {p99(cost) / p99(base):5.1f}x orjson.loads's p99"
        f"   (orjson.loads mean {statistics.fmean(base) / 1e3:.1f} us)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--build", type=Path, metavar="DIR", help="rebuild the benchmark rows from DIR")
    parser.add_argument("--train-classifier", action="store_true", help="refit the classifier head")
    parser.add_argument("--rounds", type=int, default=3, help="timing passes over the test bodies")
    args = parser.parse_args(argv)
    if args.build:
        build(args.build)
        return
    rows = load()
    if args.train_classifier:
        train_classifier(rows)
        return
    test = [r for r in rows if r["split"] == "test"]
    bench_test = [r for r in test if "prompt" in r]
    hand = [r for r in test if "body" in r]
    print(f"{len(rows)} rows ({len(test)} test); test labels: {dict(Counter(r['label'] for r in test))}")
    keyword = [detect_task(body_of(r)).task_type for r in test]
    systems = {"keywords": keyword}
    classifier = load_classifier()
    if classifier is None:
        print("(classifier: the 'classifier' extra or routing/task_head.json is missing; keywords only)")
    else:
        started = time.perf_counter()
        classifier.warm()
        print(f"(classifier: loaded in {time.perf_counter() - started:.2f} s, labels {classifier.labels})")
        combined = [detect_task(body_of(r), classifier=classifier).task_type for r in test]
        probs = classifier.probabilities([r.get("prompt", "") for r in test])
        alone = [
            classifier.labels[i] if "prompt" in r else "-" for r, i in zip(test, probs.argmax(1), strict=True)
        ]
        systems |= {"classifier alone": alone, "keywords + classifier": combined}
    n = len(bench_test)
    report(
        "benchmark prompts, test split",
        [r["label"] for r in bench_test],
        {k: v[:n] for k, v in systems.items()},
        True,
    )
    hand_systems = {k: v[n:] for k, v in systems.items() if k != "classifier alone"}
    report(
        "hand-written requests (tools, attachments, SRS types)",
        [r["label"] for r in hand],
        hand_systems,
        True,
    )
    per_source(bench_test, {k: v[:n] for k, v in systems.items()})
    print("\nhand-written misses (keywords):")
    for row, pred in zip(hand, keyword[n:], strict=True):
        if row["label"] != pred:
            print(f"  {row['label']:>13} -> {pred:<13} {last_text(row['body'])[:80]!r}")
    bodies = [body_of(r) for r in test]
    print(f"\n## detection time per request ({len(bodies)} test requests x {args.rounds} rounds)")
    print("keywords (default maps):")
    time_per_request(bodies, detect_task, args.rounds)
    typical = [b for b in bodies if len(orjson.dumps(b)) <= 2_000]
    print(f"keywords, requests of <= 2 KB ({len(typical)}):")
    time_per_request(typical, detect_task, args.rounds)
    if classifier is not None:
        print("keywords + classifier (consulted when keywords find nothing):")
        time_per_request(bodies, lambda b: detect_task(b, classifier=classifier), args.rounds)
        print("classifier.predict alone, every request:")
        texts = {id(b): last_text(b) for b in bodies}
        time_per_request(bodies, lambda b: classifier.predict(texts[id(b)]), 1)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
