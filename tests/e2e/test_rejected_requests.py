"""Requests refused before they became calls leave no record, so operators see them another way:
a ``request.rejected`` log line (never the credential) and ``turnout_rejected_requests`` on
``/metrics``, for the data plane and the control plane. Before, a client sending a revoked key
all day, or someone trying keys, left no trace at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from pydantic import SecretStr

from tests.e2e.test_metrics import TOKEN, scrape, total
from tests.gateway_env import OPENAI_MODEL, gateway

HELLO: Any = [{"role": "user", "content": "hello"}]
WRONG_KEY = "tk-0123456789abcdef.not-the-secret-at-all-0000000000000000000"


def _rejected(err: str) -> list[dict[str, Any]]:
    out = []
    for line in err.splitlines():
        if line.startswith("{") and '"request.rejected"' in line:
            out.append(json.loads(line))
    return out


async def test_refused_requests_are_logged_and_counted(
    capfd: pytest.CaptureFixture[str],  # first: capturing before the app configures its log stream
    tmp_path: Path,
) -> None:
    async with gateway(tmp_path, metrics_token=SecretStr(TOKEN)) as gw:
        wrong = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=WRONG_KEY, max_retries=0)
        try:
            for _ in range(5):
                with pytest.raises(openai.AuthenticationError):
                    await wrong.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
        finally:
            await wrong.close()
        claude = anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0)
        try:
            with pytest.raises(anthropic.BadRequestError):
                await claude.messages.create(model=OPENAI_MODEL, max_tokens=-5, messages=HELLO)
        finally:
            await claude.close()
        resp = await gw.http.get("/api/v2/agents", headers={"Authorization": "Bearer not.a.jwt"})
        assert resp.status_code == 401
        resp = await gw.http.post("/api/v2/budgets", headers=gw.admin, json={"amount_usd": -1})
        assert resp.status_code == 400
        ok = await gw.openai().chat.completions.create(
            model=OPENAI_MODEL, messages=HELLO
        )  # a call: not refused
        assert ok.choices
        samples = await scrape(gw)
    lines = _rejected(capfd.readouterr().err)
    kinds = {(e["api"], e["status"], e["code"]) for e in lines}
    assert ("data_plane", 401, "invalid_api_key") in kinds, lines
    assert any(k[0] == "data_plane" and k[1] == 400 for k in kinds), lines
    assert any(k[0] == "control_plane" and k[1] == 401 for k in kinds), lines
    assert ("control_plane", 400, "invalid_value") in kinds, lines
    keys = [e for e in lines if e["code"] == "invalid_api_key"]
    assert len(keys) == 1, "five refusals of one kind within seconds: one line"
    line = keys[0]
    assert (
        line["level"] == "warning"
        and line["path"] == "/v1/chat/completions"
        and line["client"] == "127.0.0.1"
    )
    assert "not-the-secret" not in json.dumps(lines) and "not.a.jwt" not in json.dumps(lines)
    counted = total(
        samples, "turnout_rejected_requests_total", api="data_plane", status="401", code="invalid_api_key"
    )
    assert counted == 5
    assert total(samples, "turnout_rejected_requests_total", api="control_plane", status="401") == 1
    assert total(samples, "turnout_rejected_requests_total", api="data_plane", status="200") == 0


async def test_a_refusal_needs_no_metrics(tmp_path: Path) -> None:
    """With metrics off the refusal is still answered in the caller's dialect (and logged)."""
    async with gateway(tmp_path, metrics=False) as gw:
        resp = await httpx.AsyncClient(base_url=gw.url).post(
            "/v1/messages", headers={"x-api-key": WRONG_KEY}, json={"model": OPENAI_MODEL, "messages": HELLO}
        )
        assert resp.status_code == 401 and resp.json()["type"] == "error", resp.text


async def test_refusals_before_any_handler_are_counted_too(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A wrong method on a data-plane path (405) and a body over the size limit (413, on both
    planes, declared or sent without a length) are answered before any handler runs; they were
    neither logged nor counted."""
    async with gateway(tmp_path, metrics_token=SecretStr(TOKEN), max_body_bytes=4096) as gw:
        http = httpx.AsyncClient(base_url=gw.url)
        try:
            key = {"Authorization": f"Bearer {gw.key}"}
            resp = await http.get("/v1/chat/completions", headers=key)
            assert resp.status_code == 405, resp.text
            big = b'{"model": "x", "messages": [], "pad": "' + b"a" * 8000 + b'"}'
            resp = await http.post("/v1/chat/completions", headers=key, content=big)
            assert resp.status_code == 413, resp.text

            async def chunks() -> Any:
                yield big[:3000]
                yield big[3000:]

            resp = await http.post("/v1/chat/completions", headers=key, content=chunks())
            assert resp.status_code == 413, resp.text
            resp = await http.post("/api/v2/budgets", headers=gw.admin, content=big)
            assert resp.status_code == 413, resp.text
        finally:
            await http.aclose()
        samples = await scrape(gw)
    assert total(samples, "turnout_rejected_requests_total", api="data_plane", status="405") == 1
    too_large = {"status": "413", "code": "payload_too_large"}
    assert total(samples, "turnout_rejected_requests_total", api="data_plane", **too_large) == 2
    assert total(samples, "turnout_rejected_requests_total", api="control_plane", status="413") == 1
    lines = _rejected(capfd.readouterr().err)
    kinds = {(e["api"], e["status"], e["code"]) for e in lines}
    assert ("data_plane", 405, "method_not_allowed") in kinds, lines
    assert ("data_plane", 413, "payload_too_large") in kinds, lines
    assert ("control_plane", 413, "payload_too_large") in kinds, lines
