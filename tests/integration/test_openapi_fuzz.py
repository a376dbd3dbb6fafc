"""Property-based fuzzing of every control-plane endpoint from the OpenAPI spec: no input yields a 5xx.

Schemathesis generates valid and invalid requests (positive and negative modes) per operation.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from turnout.api.openapi import HOT_PATH_OPERATIONS
from turnout.app import create_app
from turnout.auth.jwt_tokens import JwtCodec
from turnout.config import Settings
from turnout.store.migrate import upgrade_sync

_FOLDER = tempfile.mkdtemp(prefix="turnout-fuzz-")
_URL = f"sqlite+aiosqlite:///{_FOLDER}/fuzz.db"
upgrade_sync(_URL)
_SETTINGS = Settings(
    database_url=_URL, data_dir=_FOLDER, jwt_secret=secrets.token_hex(16), master_key=secrets.token_hex(32)
)
_TOKEN = JwtCodec(_SETTINGS.jwt_secret_value).mint("fuzzer", "t1", ["platform_admin"])
# the data plane (in the document too) is fuzzed with an agent key and an upstream in
# tests/security/test_fuzz_data_plane.py
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_SETTINGS)).exclude(
    path=HOT_PATH_OPERATIONS
)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    shutil.rmtree(_FOLDER, ignore_errors=True)


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_TOKEN}"})
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
