"""Schemathesis against the data plane (issue 15, done-when): every operation of ``/v1/*``,
``/api/models/*`` and the hot-path feedback route, as the OpenAPI document describes them
(``api/openapi.py``), valid and invalid requests, with a real agent key in front of the
simulator. No input may cause a 5xx; every error has its dialect's shape."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.security.edge_thread import ThreadedGateway, threaded_gateway
from turnout.api.openapi import HOT_PATH_OPERATIONS
from turnout.app import create_app
from turnout.config import Settings


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedGateway]:
    with threaded_gateway(tmp_path_factory.mktemp("fuzz")) as gw:
        yield gw


def _document() -> dict[str, Any]:
    """The app's OpenAPI document, built without serving (schemathesis needs it at collection;
    its fixture-based loading does not run under this pytest)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            Settings(
                database_url=f"sqlite+aiosqlite:///{folder}/doc.db",
                data_dir=folder,
                jwt_secret="x" * 32,
                master_key="0" * 64,
                _env_file=None,  # type: ignore[call-arg]
            )
        )
        return app.app.openapi()  # type: ignore[attr-defined, no-any-return]


schema = schemathesis.openapi.from_dict(_document()).include(path=HOT_PATH_OPERATIONS)


@schema.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: Any, gateway: ThreadedGateway) -> None:
    response = case.call(base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.key}"}, timeout=30)
    where = f"{case.method} {case.formatted_path} {str(case.body)[:300]}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        payload = response.json()
        if case.path.startswith("/v1/messages") and case.method == "POST":  # others: a plain 405
            anthropic = payload.get("type") == "error" and set(payload["error"]) == {"type", "message"}
            assert anthropic, (where, payload)
        else:
            assert set(payload["error"]) == {"message", "type", "param", "code"}, where


def test_the_document_describes_the_data_plane(gateway: ThreadedGateway) -> None:
    """/docs shows the data plane: each route, its body schema and its security schemes."""
    spec = httpx.get(f"{gateway.url}/openapi.json").json()
    for path, method in [
        ("/v1/chat/completions", "post"),
        ("/v1/embeddings", "post"),
        ("/v1/messages", "post"),
        ("/v1/messages/count_tokens", "post"),
        ("/v1/responses", "post"),
        ("/v1/responses/{response_id}", "get"),
        ("/v1/responses/{response_id}/input_items", "get"),
        ("/v1/completions", "post"),
        ("/v1/models", "get"),
        ("/api/models/chat", "post"),
        ("/api/models/completion", "post"),
        ("/api/models/embeddings", "post"),
        ("/api/models", "get"),
        ("/api/v2/chat/messages/{message_id}/feedback", "post"),
    ]:
        op = spec["paths"][path][method]
        assert {"bearerAuth": []} in op["security"] and {"apiKeyAuth": []} in op["security"], path
        if method == "post":
            assert "$ref" in op["requestBody"]["content"]["application/json"]["schema"], path
    assert spec["components"]["securitySchemes"]["apiKeyAuth"]["name"] == "x-api-key"
    assert httpx.get(f"{gateway.url}/docs").status_code == 200
