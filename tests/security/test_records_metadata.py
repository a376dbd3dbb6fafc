"""Caller-supplied record fields are checked against what the database can store, at parse time:
a value the Message table would refuse gets a 400 naming the field, and nothing goes upstream.

Before, ``metadata.conversation_id`` of 65-255 characters and NUL bytes in any id passed; the
database then refused the row, and the caller's answered, billed call left no record."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]
# the Message columns' limits (metadata.task_id is kept in the JSON metadata column)
TOO_LONG = {"agent_id": 65, "conversation_id": 65, "user_id": 256, "task_id": 256}
BAD_TEXT = ["nul\x00byte", "\x00"]


async def _post(env: GatewayEnv, dialect: str, metadata: dict[str, Any], **extra: Any) -> tuple[int, Any]:
    if dialect == "openai":
        body = {"model": OPENAI_MODEL, "messages": HELLO, "metadata": metadata, **extra}
        resp = await env.http.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {env.key}"}
        )
    elif dialect == "anthropic":
        body = {"model": ANTHROPIC_MODEL, "max_tokens": 20, "messages": HELLO, "metadata": metadata, **extra}
        headers = {"x-api-key": env.key, "anthropic-version": "2023-06-01"}
        resp = await env.http.post("/v1/messages", json=body, headers=headers)
    else:
        body = {"model_id": OPENAI_MODEL, "messages": HELLO, "metadata": metadata, **extra}
        resp = await env.http.post(
            "/api/models/chat", json=body, headers={"Authorization": f"Bearer {env.key}"}
        )
    return resp.status_code, resp.json()


def _message(body: Any) -> str:
    """The error text (OpenAI and Anthropic shapes alike)."""
    return str(body["error"]["message"])


def _upstream(env: GatewayEnv) -> int:
    return sum(env.sim.stats.routes.values())


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "native"])
@pytest.mark.parametrize("field", ["agent_id", "conversation_id"])
async def test_metadata_longer_than_its_column_is_refused(gw: GatewayEnv, dialect: str, field: str) -> None:  # noqa: F811
    status, body = await _post(gw, dialect, {field: "x" * TOO_LONG[field]})
    assert status == 400, body
    assert f"metadata.{field}" in _message(body)
    if dialect == "openai":
        assert body["error"]["param"] == f"metadata.{field}"
    assert _upstream(gw) == 0


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "native"])
@pytest.mark.parametrize("field", ["agent_id", "conversation_id", "user_id", "task_id"])
@pytest.mark.parametrize("value", BAD_TEXT)
async def test_metadata_with_nul_is_refused(gw: GatewayEnv, dialect: str, field: str, value: str) -> None:  # noqa: F811
    status, body = await _post(gw, dialect, {field: value})
    assert status == 400, body
    assert f"metadata.{field}" in _message(body)
    assert _upstream(gw) == 0


@pytest.mark.parametrize("dialect", ["openai", "native"])  # the Anthropic dialect has no task_type
async def test_task_type_with_nul_is_refused(gw: GatewayEnv, dialect: str) -> None:  # noqa: F811
    status, body = await _post(gw, dialect, {}, task_type="code\x00")
    assert status == 400, body
    assert "task_type" in _message(body)
    assert _upstream(gw) == 0


@pytest.mark.parametrize("dialect", ["openai", "native"])
async def test_a_task_type_too_long_to_store_is_refused(gw: GatewayEnv, dialect: str) -> None:  # noqa: F811
    """The records and the learned experience keep 50 characters of a task type: a longer one was
    cut silently, so two long names sharing their first 50 characters were learned as one task."""
    status, body = await _post(gw, dialect, {}, task_type="support-" + "x" * 43)
    assert status == 400, body
    assert "task_type" in _message(body) and "50" in _message(body)
    assert _upstream(gw) == 0
    status, body = await _post(gw, dialect, {}, task_type=" Support-" + "x" * 41 + " ")  # 50 once trimmed
    assert status == 200, body
    (row,) = await gw.records(1)
    assert row.task_type == "support-" + "x" * 41


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
async def test_metadata_at_the_limits_is_recorded_as_sent(gw: GatewayEnv, dialect: str) -> None:  # noqa: F811
    metadata = {"conversation_id": "c" * 64, "user_id": "ü" * 255, "task_id": "t" * 255}
    status, body = await _post(gw, dialect, metadata)
    assert status == 200, body
    (row,) = await gw.records(1)
    assert (row.conversation_id, row.user_id) == (metadata["conversation_id"], metadata["user_id"])
    assert row.metadata_["task_id"] == metadata["task_id"]
