"""Refused requests are logged without flooding the logs: the first of each kind at once, then a
line per interval saying how many were left unlogged; authentication refusals at warning."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from structlog.testing import capture_logs

from turnout.api.rejections import CONTROL_PLANE, DATA_PLANE, LOG_EVERY_S, Rejections


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(path: str = "/v1/chat/completions") -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [],
        "client": ("203.0.113.7", 50123),
    }
    return Request(scope)


def test_a_flood_of_refusals_is_a_line_per_interval_with_the_count_left_out() -> None:
    clock = Clock()
    rejections = Rejections(clock=clock)
    with capture_logs() as logs:
        for _ in range(50):
            rejections.note(_request(), DATA_PLANE, 401, "invalid_api_key", "unknown API key")
        clock.now += LOG_EVERY_S
        rejections.note(_request(), DATA_PLANE, 401, "invalid_api_key", "unknown API key")
    assert [(e["event"], e["log_level"], e["unlogged_since_last"]) for e in logs] == [
        ("request.rejected", "warning", 0),
        ("request.rejected", "warning", 49),
    ]
    first = logs[0]
    assert (first["api"], first["status"], first["code"], first["path"], first["client"]) == (
        DATA_PLANE,
        401,
        "invalid_api_key",
        "/v1/chat/completions",
        "203.0.113.7",
    )


def test_each_kind_of_refusal_is_logged_on_its_own() -> None:
    rejections = Rejections(clock=Clock())
    with capture_logs() as logs:
        rejections.note(_request(), DATA_PLANE, 401, "invalid_api_key", "unknown API key")
        rejections.note(_request(), DATA_PLANE, 400, "invalid_value", "messages: required")
        rejections.note(_request("/api/v2/agents"), CONTROL_PLANE, 401, "invalid_token", "bad token")
        rejections.note(_request(), DATA_PLANE, 400, "invalid_value", "messages: required")  # same kind
    kinds = [(e["api"], e["status"], e["code"], e["log_level"]) for e in logs]
    assert kinds == [
        (DATA_PLANE, 401, "invalid_api_key", "warning"),
        (DATA_PLANE, 400, "invalid_value", "info"),
        (CONTROL_PLANE, 401, "invalid_token", "warning"),
    ]
