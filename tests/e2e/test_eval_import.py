"""``turnout eval import``: a team's own evaluation of its models, loaded from the command line into
the database of a running gateway, steers ``model: "auto"`` within a poll, as prior experience every
tenant starts from; a re-import replaces it, and a bad table or option changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, OPENAI_MODEL_2, gateway
from tests.integration.test_prior_task_models import CODING, LIVE, SUPPORT
from turnout.routing.priors import table_priors
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.models import Model, Provider
from turnout.store.priors import RoutingPrior, RoutingPromptRows, RoutingTaskModel

TURNOUT = str(Path(sys.executable).with_name("turnout"))
PROMPT = [{"role": "user", "content": "Say hi to the team"}]


def _table(path: Path, scores: dict[str, float], rows: int = 40) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for n in range(rows):
            fh.write(json.dumps({"task": "general", "prompt": f"hello {n}", "scores": scores}) + "\n")
    return path


async def _turnout(tmp_path: Path, *args: str, database_url: str | None = None) -> tuple[int, str]:
    env = {
        **os.environ,
        # the gateway's own database, unless the test names one
        "TURNOUT_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        "TURNOUT_DATA_DIR": str(tmp_path / "data"),
        "TURNOUT_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def _picks(http: httpx.AsyncClient, key: str, n: int = 12) -> set[str]:
    picked = set()
    for _ in range(n):
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "auto", "messages": PROMPT},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert resp.status_code == 200, resp.text
        picked.add(resp.headers["x-turnout-model"])
    return picked


async def _until_routed_to(http: httpx.AsyncClient, key: str, model: str) -> set[str]:
    for _ in range(40):  # the gateway reads imports on its feedback poll (0.2 s here)
        picked = await _picks(http, key, 3)
        if picked == {model}:
            return await _picks(http, key)
        await asyncio.sleep(0.1)
    return picked


async def test_an_imported_evaluation_steers_routing_and_a_reimport_replaces_it(tmp_path: Path) -> None:
    async with gateway(tmp_path, feedback_sync_interval_s=0.2) as gw:
        models = sorted(gw.container.snapshots.current.models)  # the agent may use every one
        assert {OPENAI_MODEL, OPENAI_MODEL_2, ANTHROPIC_MODEL} <= set(models)

        def scores(best: str) -> dict[str, float]:  # the table names gpt-4o by its upstream name
            graded = {m: 0.95 if m == best else 0.2 for m in models}
            graded["gpt-4o"] = graded.pop(OPENAI_MODEL_2)
            return graded

        table = tmp_path / "ours.jsonl"
        args = (
            "eval",
            "import",
            "--outcomes",
            str(table),
            f"--map=gpt-4o={OPENAI_MODEL_2}",
            "--source",
            "team-eval",
        )
        _table(table, scores(OPENAI_MODEL_2))
        code, out = await _turnout(tmp_path, *args)
        assert code == 0, out
        assert "team-eval" in out and "40 graded prompts" in out and OPENAI_MODEL_2 in out
        assert await _until_routed_to(gw.http, gw.key, OPENAI_MODEL_2) == {OPENAI_MODEL_2}

        # the same source imported again replaces its priors: now the cheap model is the good one
        _table(table, scores(OPENAI_MODEL))
        code, out = await _turnout(tmp_path, *args)
        assert code == 0, out
        assert await _until_routed_to(gw.http, gw.key, OPENAI_MODEL) == {OPENAI_MODEL}
        explained = gw.container.routing.router.experience.estimate("acme", "bot", "general", OPENAI_MODEL_2)
        assert explained.mean is not None and abs(explained.mean - 0.2) < 0.05, "the first import lingers"

        # --prefix makes ids of the table's names
        code, out = await _turnout(
            tmp_path, "eval", "import", "--outcomes", str(_table(tmp_path / "short.jsonl", {"gpt-4o": 0.5})),
            "--prefix", "oai/", "--source", "short-names",
        )  # fmt: skip
        assert code == 0 and OPENAI_MODEL_2 in out, out

        bad_score = _table(tmp_path / "bad.jsonl", {"gpt-4o": 1.7})
        code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(bad_score))
        assert code == 2 and "bad.jsonl line 1: 'scores.gpt-4o' must be a number from 0 to 1" in out, out
        code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(bad_score), "--weight", "0")
        assert code == 2 and "--weight" in out
        code, out = await _turnout(
            tmp_path, "eval", "import", "--outcomes", str(bad_score), "--map", "gpt-4o"
        )
        assert code == 2 and "NAME=MODEL_ID" in out
        assert await _picks(gw.http, gw.key) == {OPENAI_MODEL}, "a refused import changed routing"


def test_priors_sum_a_table_per_task_and_model_with_its_weight() -> None:
    cells = table_priors(
        [("math", {"a": 1.0, "b": 0.0}), ("math", {"a": 0.5, "b": 0.0}), ("code", {"a": 0.0})],
        weight=0.5,
        prefix="p/",
    )
    by_key = {(c.task, c.model_id): (c.count, c.total, c.total_sq) for c in cells}
    assert by_key == {
        ("math", "p/a"): (1.0, 0.75, 0.625),
        ("math", "p/b"): (1.0, 0.0, 0.0),
        ("code", "p/a"): (0.5, 0.0, 0.0),
    }


async def test_an_evaluation_of_several_tasks_teaches_detection_its_tasks(tmp_path: Path) -> None:
    """Live prompts like the table's are detected as its tasks (the names its priors are kept
    under), before keywords; a prompt like none of them is left to built-in detection."""
    table = tmp_path / "two-tasks.jsonl"
    with table.open("w", encoding="utf-8") as fh:
        for n in range(60):
            rows = [
                ("trivia", f"Q: Which river flows through city number {n}? A:"),
                (
                    "logic-grid",
                    f"There are {n % 5 + 3} houses in a row. Each person owns a pet. Who owns the fish?",
                ),
            ]
            for task, prompt in rows:
                fh.write(json.dumps({"task": task, "prompt": prompt, "scores": {"gpt-4o-mini": 0.5}}) + "\n")
    async with gateway(tmp_path, feedback_sync_interval_s=0.2) as gw:
        code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(table), "--prefix", "oai/")
        assert code == 0, out
        assert "task detection learned 2 tasks: logic-grid, trivia" in out
        headers = {"Authorization": f"Bearer {gw.key}"}

        async def detected(prompt: str) -> str:
            resp = await gw.http.post(
                "/api/v2/routing/explain",
                json={"messages": [{"role": "user", "content": prompt}]},
                headers=headers,
            )
            assert resp.status_code == 200, resp.text
            return str(resp.json()["task_type"])

        for _ in range(40):  # the gateway loads the classifier on its feedback poll
            if await detected("Q: Which river flows through Vienna? A:") == "trivia":
                break
            await asyncio.sleep(0.1)
        assert await detected("Q: Which river flows through Vienna? A:") == "trivia"
        assert await detected("There are 4 houses in a row. Each person owns a pet. Who owns the zebra?") == (
            "logic-grid"
        )
        # unlike the table's prompts: built-in detection decides (a softmax over two tasks named one)
        assert await detected("Write a Python function that reverses a linked list") == "code"
        assert await detected("hey, how's it going?") not in ("trivia", "logic-grid")
        # the explicit task still wins
        resp = await gw.http.post(
            "/v1/chat/completions",
            json={
                "model": "auto",
                "task_type": "code",
                "messages": [{"role": "user", "content": "Q: Which river? A:"}],
            },
            headers=headers,
        )
        assert resp.status_code == 200, resp.text
        rows = await gw.records(1)
        assert rows[-1].task_type == "code"


async def test_a_second_evaluation_does_not_make_detection_forget_the_first(tmp_path: Path) -> None:
    """Two imports of different tasks: live prompts like either table's are detected as its tasks.
    Only the newest import's classifier was used, so after a support evaluation coding prompts
    were detected as the built-in ``code`` and the coding evaluation's priors went unused."""
    tables = {"coding": CODING, "support": SUPPORT}  # (task, prompt) rows; LIVE: prompts like them
    for name, table in tables.items():
        with (tmp_path / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for task, prompt in table:
                fh.write(json.dumps({"task": task, "prompt": prompt, "scores": {"gpt-4o-mini": 0.5}}) + "\n")
    async with gateway(tmp_path, feedback_sync_interval_s=0.2) as gw:
        headers = {"Authorization": f"Bearer {gw.key}"}

        async def detected() -> list[str]:
            found = []
            for prompt in LIVE:
                body = {"messages": [{"role": "user", "content": prompt}]}
                resp = await gw.http.post("/api/v2/routing/explain", json=body, headers=headers)
                assert resp.status_code == 200, resp.text
                found.append(str(resp.json()["task_type"]))
            return found

        for name in tables:
            code, out = await _turnout(
                tmp_path, "eval", "import", "--outcomes", str(tmp_path / f"{name}.jsonl"), "--prefix", "oai/"
            )
            assert code == 0 and "task detection learned 2 tasks" in out, out
        for _ in range(40):  # the gateway loads the imports on its feedback poll
            if "billing" in await detected():
                break
            await asyncio.sleep(0.1)
        assert await detected() == list(LIVE.values())


async def test_a_prompt_between_two_learned_tasks_is_routed_on_both(tmp_path: Path) -> None:
    """A prompt that reads like two of the evaluation's tasks is weighed by both tasks' experience:
    the model that is best at one and useless at the other loses it to the one good at both, and
    the decision says which tasks were weighed. A prompt of one task is still that task's."""
    trivia = {OPENAI_MODEL: 0.95, OPENAI_MODEL_2: 0.8, ANTHROPIC_MODEL: 0.2}
    grid = {OPENAI_MODEL: 0.05, OPENAI_MODEL_2: 0.8, ANTHROPIC_MODEL: 0.2}
    table = tmp_path / "two-tasks.jsonl"
    with table.open("w", encoding="utf-8") as fh:
        for n in range(60):
            question = f"Q: Which river flows through city number {n}? A:"
            houses = f"There are {n % 5 + 3} houses in a row. Each person owns a pet. Who owns the fish?"
            fh.write(json.dumps({"task": "trivia", "prompt": question, "scores": trivia}) + "\n")
            fh.write(json.dumps({"task": "logic-grid", "prompt": houses, "scores": grid}) + "\n")
    async with gateway(tmp_path, feedback_sync_interval_s=0.2) as gw:
        code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(table))
        assert code == 0, out
        headers = {"Authorization": f"Bearer {gw.key}"}

        async def explain(prompt: str) -> dict[str, object]:
            body = {"messages": [{"role": "user", "content": prompt}]}
            resp = await gw.http.post("/api/v2/routing/explain", json=body, headers=headers)
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

        pure = "Q: Which river flows through Vienna? A:"
        for _ in range(40):  # the gateway loads the import on its feedback poll
            if (await explain(pure))["task_type"] == "trivia":
                break
            await asyncio.sleep(0.1)

        def experience(decision: dict[str, object]) -> dict[str, float]:
            ranked = decision["ranked"]
            assert isinstance(ranked, list)
            return {r["model"]: r["experience"] for r in ranked}

        alone = await explain(pure)
        assert alone["task_type"] == "trivia"
        assert experience(alone)[OPENAI_MODEL] > experience(alone)[OPENAI_MODEL_2]

        # the two tasks' phrasings run together: about 60% trivia, 40% logic-grid to the learned tasks
        both = await explain("There are 4 houses in a row. Each flows through city number 4? A:")
        detection = both["detection"]
        assert isinstance(detection, dict) and both["task_type"] == "trivia", both
        mix = {m["task"]: m["probability"] for m in detection["task_mix"]}
        assert set(mix) == {"logic-grid"} and 0.25 <= mix["logic-grid"] < 0.5, detection
        # trivia alone would pick gpt-4o-mini (0.95 there); weighed with logic-grid (0.05) it loses
        assert experience(both)[OPENAI_MODEL_2] > experience(both)[OPENAI_MODEL]
        reason = str(both["reason"])
        assert "experience of 'trivia' x0.6" in reason and "'logic-grid' x0.4" in reason


async def test_an_imported_evaluation_fills_the_prompt_memory(tmp_path: Path) -> None:
    """With the prompt memory on, an import's prompts join it on every gateway's poll: within one
    task, new short questions go to the model the evaluation found best on short questions, and new
    few-shot prompts to the one best on those, though per task the two are equal."""
    from turnout.routing.classifier import TaskClassifier

    if not TaskClassifier.available():
        pytest.skip("needs the 'classifier' extra (wordllama)")

    def short(n: int) -> str:
        return f"What is the capital of country number {n}?"

    def few_shot(n: int) -> str:
        examples = "".join(f"Q: What is {a} plus {a + 1}?\nA: {2 * a + 1}\n" for a in range(n % 4 + 3))
        return f"Answer like the examples.\n{examples}Q: Which river flows through city number {n}?\nA:"

    async with gateway(tmp_path, feedback_sync_interval_s=0.2, prompt_memory=True) as gw:
        models = sorted(gw.container.snapshots.current.models)
        table = tmp_path / "shapes.jsonl"
        with table.open("w", encoding="utf-8") as fh:
            for n in range(40):
                for prompt, best in ((short(n), OPENAI_MODEL), (few_shot(n), OPENAI_MODEL_2)):
                    scores = {m: 0.95 if m == best else 0.1 for m in models}
                    scores[OPENAI_MODEL if best == OPENAI_MODEL_2 else OPENAI_MODEL_2] = 0.05
                    fh.write(json.dumps({"task": "quiz", "prompt": prompt, "scores": scores}) + "\n")
        code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(table), "--source", "shapes")
        assert code == 0, out
        memory = gw.container.routing.router.memory
        assert memory is not None
        for _ in range(50):  # the gateway reads imports on its feedback poll (0.2 s here)
            if (
                memory.adjustment("acme", "quiz", np.ones(260, np.float32) / 260**0.5, [OPENAI_MODEL])
                is not None
            ):
                break
            await asyncio.sleep(0.1)

        async def pick(text: str) -> str:
            body = {"model": "auto", "task_type": "quiz", "messages": [{"role": "user", "content": text}]}
            resp = await gw.http.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {gw.key}"}
            )
            assert resp.status_code == 200, resp.text
            return resp.headers["x-turnout-model"]

        short_picks = [await pick(short(n)) for n in range(100, 110)]
        few_shot_picks = [await pick(few_shot(n)) for n in range(100, 110)]
        assert short_picks.count(OPENAI_MODEL) >= 8, short_picks
        assert few_shot_picks.count(OPENAI_MODEL_2) >= 8, few_shot_picks


def test_models_that_find_the_same_prompts_hard_load_on_one_factor() -> None:
    """Loadings: how much of each model's scores is the prompts' shared difficulty. Models right
    on the same easy prompts load high; models whose scores do not depend on the prompt load near
    zero; a task with one prompt, or a model whose score never varies, get none."""
    rng = np.random.default_rng(5)
    shared, apart = [], []
    for _ in range(400):
        easy = rng.random() < 0.6
        shared.append(("qa", {"a": float(easy or rng.random() < 0.1), "b": float(easy), "c": float(easy)}))
        apart.append(("coin", {"a": float(rng.random() < 0.7), "b": float(rng.random() < 0.6), "c": 1.0}))
    cells = table_priors([*shared, *apart, ("one", {"a": 1.0, "b": 0.0}), ("qa", {"a": 1.0})])
    loading = {(c.task, c.model_id): c.loading for c in cells}
    assert all(value is not None and value > 0.8 for key, value in loading.items() if key[0] == "qa")
    assert abs(loading["coin", "a"] or 1.0) < 0.3 and abs(loading["coin", "b"] or 1.0) < 0.3
    assert loading["coin", "c"] is None and loading["one", "a"] is None


async def test_an_imported_tables_common_factor_reaches_the_gateways_estimates(tmp_path: Path) -> None:
    """A table whose models are right on the same prompts shares much of their error: after its
    import the gateway draws that part once for both (``Estimates.shared``); a re-import whose
    scores do not share the prompts' difficulty takes it back."""
    rng = np.random.default_rng(9)
    easy = rng.random(300) < 0.6
    lucky, coin = rng.random(300) < 0.1, rng.random(300) < 0.6
    table = tmp_path / "paired.jsonl"
    models = [OPENAI_MODEL, ANTHROPIC_MODEL]

    def write(fair: np.ndarray) -> None:
        with table.open("w", encoding="utf-8") as fh:
            for n, (e, luck, f) in enumerate(zip(easy, lucky, fair, strict=True)):
                scores = {OPENAI_MODEL: float(e or luck), ANTHROPIC_MODEL: float(f)}
                fh.write(json.dumps({"task": "general", "prompt": f"q {n}", "scores": scores}) + "\n")

    async with gateway(tmp_path, feedback_sync_interval_s=0.2) as gw:
        experience = gw.container.routing.router.experience
        for fair, paired in ((easy, True), (coin, False)):
            write(fair)
            code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(table), "--source", "ab")
            assert code == 0, out

            # the shared part of the first model's posterior spread: a tenant without ratings of its
            # own also carries the spread between it and the table (its own, not shared): ~0.2
            def share() -> float:
                est = experience.estimate_many("acme", "bot", "general", models, np.array([0.5, 0.5]))
                return 0.0 if est.shared is None else float(est.shared[0] / np.sqrt(est.var[0]))

            for _ in range(50):  # the gateway reads imports on its feedback poll (0.2 s here)
                if (share() > 0.1) == paired:
                    break
                await asyncio.sleep(0.1)
            assert (share() > 0.1) == paired, (share(), paired)
            assert share() < 0.99


async def test_an_import_that_could_break_routing_is_refused(tmp_path: Path) -> None:
    """--weight inf was taken (exit 0) and stored Infinity and NaN sums that stopped every gateway
    on the database from loading later imports, and from starting; 1e300 stored ~6e301. An empty
    --source fell back to the file's name and replaced that import. All are refused with exit 2."""
    table = _table(tmp_path / "team.jsonl", {"gpt-4o-mini": 0.5})
    for weight in ("inf", "1e300", "nan", "1001"):
        code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(table), "--weight", weight)
        assert code == 2 and "--weight must be above 0 and at most 1000" in out, (weight, out)
    code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(table), "--source", "")
    assert code == 2 and "--source must not be empty" in out, out
    code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(table), "--weight", "1000")
    assert code == 0, out


def _two_tasks(path: Path, scores: dict[str, float]) -> Path:
    """A table of two tasks (``trivia``, ``logic-grid``): its import also trains task detection."""
    with path.open("w", encoding="utf-8") as fh:
        for n in range(60):
            houses = f"There are {n % 5 + 3} houses in a row. Each person owns a pet. Who owns the fish?"
            for task, prompt in (
                ("trivia", f"Q: Which river flows through city number {n}? A:"),
                ("logic-grid", houses),
            ):
                fh.write(json.dumps({"task": task, "prompt": prompt, "scores": scores}) + "\n")
    return path


async def _rows(database_url: str) -> dict[str, int]:
    """Rows per source across the three tables an import writes."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            found: dict[str, int] = {}
            for table in (RoutingPrior, RoutingTaskModel, RoutingPromptRows):
                query = select(table.source, func.count()).group_by(table.source)
                for source, n in (await conn.execute(query)).all():
                    found[source] = found.get(source, 0) + n
            return found
    finally:
        await engine.dispose()


async def _catalog(database_url: str, model_ids: list[str]) -> None:
    """A catalog of ``model_ids`` (one provider), as a synced provider leaves it."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            session.add(
                Provider(id="oai", display_name="OpenAI", provider_type="openai", api_base="https://x")
            )
            await session.flush()
            for model_id in model_ids:
                external = model_id.removeprefix("oai/")
                session.add(
                    Model(id=model_id, provider_id="oai", external_id=external, display_name=external)
                )
    finally:
        await engine.dispose()


async def test_imported_evaluations_are_listed_and_removed(db_url: str, tmp_path: Path) -> None:
    """``eval list`` shows every imported evaluation (what it holds, and model ids the catalog does
    not have: a wrong --prefix); ``eval remove`` deletes one, all of it, and an unknown name changes
    nothing. Before, an import could only be replaced by its name or deleted by hand in SQL."""
    run = {"database_url": db_url}
    await _catalog(db_url, [OPENAI_MODEL, OPENAI_MODEL_2])
    code, out = await _turnout(tmp_path, "eval", "list", **run)
    assert code == 0 and "No evaluation is imported" in out and "turnout eval import" in out, out
    code, out = await _turnout(tmp_path, "eval", "list", "--json", **run)
    assert code == 0 and json.loads(out) == [], out

    team = _table(tmp_path / "team.jsonl", {"gpt-4o-mini": 0.9, "gpt-4o": 0.4})
    code, out = await _turnout(
        tmp_path, "eval", "import", "--outcomes", str(team), "--prefix", "oai/", "--weight", "3", **run
    )
    assert code == 0, out
    vendor = _two_tasks(tmp_path / "vendor.jsonl", {"gpt-4o-mini": 0.5})
    code, out = await _turnout(
        tmp_path,
        "eval",
        "import",
        "--outcomes",
        str(vendor),
        "--prefix",
        "typo/",
        "--source",
        "vendor",
        **run,
    )
    assert code == 0, out

    code, out = await _turnout(tmp_path, "eval", "list", **run)
    assert code == 0, out
    assert "team" in out and "vendor" in out and "typo/gpt-4o-mini" in out, out  # not in the catalog
    code, out = await _turnout(tmp_path, "eval", "list", "--json", **run)
    assert code == 0, out
    listed = {e["source"]: e for e in json.loads(out)}
    assert set(listed) == {"team", "vendor"}
    assert listed["team"]["tasks"] == ["general"] and listed["team"]["models"] == [
        OPENAI_MODEL_2,
        OPENAI_MODEL,
    ]
    assert listed["team"]["ratings_per_model"] == 120 and listed["team"]["not_in_catalog"] == []
    assert listed["team"]["task_classifier"] is False
    assert (
        listed["vendor"]["tasks"] == ["logic-grid", "trivia"] and listed["vendor"]["task_classifier"] is True
    )
    assert listed["vendor"]["not_in_catalog"] == ["typo/gpt-4o-mini"]
    assert listed["vendor"]["ratings_per_model"] == 120 and listed["vendor"]["imported_at"]
    if listed["team"]["prompt_rows"]:  # stored where the word vectors are installed: prompts and weight show
        assert listed["team"]["graded_prompts"] == 40 and listed["team"]["weight"] == 3
        assert listed["vendor"]["graded_prompts"] == 120 and listed["vendor"]["weight"] == 1

    before = await _rows(db_url)
    code, out = await _turnout(tmp_path, "eval", "remove", "nope", **run)
    assert code == 1 and "no imported evaluation is named 'nope'" in out and "team, vendor" in out, out
    assert await _rows(db_url) == before, "removing an unknown source changed the database"

    code, out = await _turnout(tmp_path, "eval", "remove", "vendor", **run)
    assert code == 0 and "removed 'vendor'" in out and "TURNOUT_FEEDBACK_SYNC_INTERVAL_S" in out, out
    assert await _rows(db_url) == {"team": before["team"]}, "a table kept the removed evaluation's rows"
    code, out = await _turnout(tmp_path, "eval", "list", "--json", **run)
    assert code == 0 and [e["source"] for e in json.loads(out)] == ["team"], out
    code, out = await _turnout(tmp_path, "eval", "list", **run)
    assert code == 0 and "team" in out and "vendor" not in out, out

    code, out = await _turnout(tmp_path, "eval", "remove", "team", **run)
    assert code == 0, out
    code, out = await _turnout(tmp_path, "eval", "remove", "team", **run)
    assert code == 1 and "no evaluation is imported" in out, out
    assert await _rows(db_url) == {}


async def test_a_running_gateway_drops_a_removed_evaluation(tmp_path: Path) -> None:
    """Removing an evaluation takes its priors and its learned tasks out of a running gateway's
    routing within its poll; the other imports keep steering."""
    async with gateway(tmp_path, feedback_sync_interval_s=0.2) as gw:
        models = sorted(gw.container.snapshots.current.models)

        def scores(best: str) -> dict[str, float]:
            return {m: 0.95 if m == best else 0.05 for m in models}

        # the team's evaluation outweighs the vendor's (nine times the ratings) until it is removed
        for source, best, weight in (("vendor", OPENAI_MODEL, "1"), ("team", OPENAI_MODEL_2, "9")):
            table = _table(tmp_path / f"{source}.jsonl", scores(best))
            code, out = await _turnout(
                tmp_path, "eval", "import", "--outcomes", str(table), "--source", source, "--weight", weight
            )
            assert code == 0, out
        assert await _until_routed_to(gw.http, gw.key, OPENAI_MODEL_2) == {OPENAI_MODEL_2}
        code, out = await _turnout(tmp_path, "eval", "remove", "team")
        assert code == 0, out
        assert await _until_routed_to(gw.http, gw.key, OPENAI_MODEL) == {OPENAI_MODEL}

        # an evaluation's learned tasks go with it
        tasks = _two_tasks(tmp_path / "tasks.jsonl", scores(OPENAI_MODEL))
        code, out = await _turnout(tmp_path, "eval", "import", "--outcomes", str(tasks), "--source", "tasks")
        assert code == 0 and "task detection learned 2 tasks" in out, out
        headers = {"Authorization": f"Bearer {gw.key}"}

        async def detected() -> str:
            body = {"messages": [{"role": "user", "content": "Q: Which river flows through Vienna? A:"}]}
            resp = await gw.http.post("/api/v2/routing/explain", json=body, headers=headers)
            assert resp.status_code == 200, resp.text
            return str(resp.json()["task_type"])

        for _ in range(40):  # the gateway reads imports on its feedback poll (0.2 s here)
            if await detected() == "trivia":
                break
            await asyncio.sleep(0.1)
        assert await detected() == "trivia"
        code, out = await _turnout(tmp_path, "eval", "remove", "tasks")
        assert code == 0, out
        for _ in range(40):
            if await detected() != "trivia":
                break
            await asyncio.sleep(0.1)
        assert await detected() != "trivia", "the removed evaluation's tasks are still detected"
        assert await _picks(gw.http, gw.key) == {OPENAI_MODEL}, "removing one import changed another's"
