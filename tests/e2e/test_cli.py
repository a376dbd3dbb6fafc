"""The `turnout` command line as a user runs it: serve, token, providers, models."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.upstreams.models_server import ModelsUpstream
from turnout.auth.jwt_tokens import JwtCodec

TURNOUT = str(Path(sys.executable).with_name("turnout"))
KEY = "sk-or-cli-Qw8eR4tY6uI2oP0a"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "TURNOUT_DATA_DIR": str(tmp_path / "data"),
        "TURNOUT_LOG_LEVEL": "WARNING",
        "OR_KEY": KEY,
        "COLUMNS": "250",
    }


async def _turnout(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


@pytest.fixture
async def upstream() -> AsyncIterator[ModelsUpstream]:
    server = ModelsUpstream(count=30, api_key=KEY)
    await server.start()
    yield server
    await server.stop()


async def test_provider_lifecycle_from_the_cli(env: dict[str, str], upstream: ModelsUpstream) -> None:
    base = f"{upstream.base_url}/api/v1"
    code, out = await _turnout(env, "providers", "add", "openrouter", "--type", "openrouter",
                               "--api-base", base, "--api-key-env", "OR_KEY", "--rpm", "100")  # fmt: skip
    assert code == 0, out
    assert "secret/llm/openrouter" in out and KEY not in out
    code, out = await _turnout(env, "providers", "test", "openrouter")
    assert code == 0 and "ok" in out, out
    code, out = await _turnout(env, "providers", "sync", "openrouter")
    assert code == 0, out
    assert "discovered 30, added 30" in out
    code, out = await _turnout(env, "providers", "list")
    assert code == 0 and "openrouter" in out and "30" in out, out
    code, out = await _turnout(env, "models", "list", "--provider", "openrouter", "--tier", "free")
    assert code == 0 and "llama-3.3-70b-instruct:free" in out and "openai/gpt-4o" not in out, out
    code, out = await _turnout(env, "providers", "sync", "missing")
    assert code == 1 and "not found" in out
    code, out = await _turnout(env, "providers", "add", "bad id", "--type", "openai", "--api-base", base)
    assert code == 2 and "invalid input" in out


async def test_token_command_mints_a_verifiable_jwt(env: dict[str, str]) -> None:
    env = {**env, "TURNOUT_JWT_SECRET": secrets.token_hex(16)}
    code, out = await _turnout(env, "token", "--sub", "ann", "--tenant", "acme", "--role", "tenant_admin")
    assert code == 0, out
    principal = JwtCodec(env["TURNOUT_JWT_SECRET"]).verify(out.strip())
    assert (principal.subject, principal.tenant_id, principal.roles) == (
        "ann",
        "acme",
        frozenset({"tenant_admin"}),
    )
    code, out = await _turnout(env, "token", "--sub", "ann", "--tenant", "acme", "--role", "overlord")
    assert code == 1 and "unknown role" in out


async def _wait_ready(http: httpx.AsyncClient, path: str, timeout_s: float = 30.0) -> None:
    """Poll ``path`` until the process behind ``http`` answers 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if (await http.get(path)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"nothing answered {path} within {timeout_s:g} s"
        await asyncio.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_starts_with_embedded_defaults(env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, "serve", "--port", str(port), env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await _wait_ready(http, "/healthz")
            assert (await http.get("/docs")).status_code == 200
            spec = (await http.get("/openapi.json")).json()
            assert "/api/v2/admin/providers/{provider_id}/sync" in spec["paths"]
            _, token = await _turnout(env, "token", "--sub", "a", "--tenant", "p", "--role", "platform_admin")
            resp = await http.get(
                "/api/v2/admin/providers", headers={"Authorization": f"Bearer {token.strip()}"}
            )
            assert resp.status_code == 200, "the CLI and the server share the generated JWT key file"
        key_file = Path(env["TURNOUT_DATA_DIR"]) / "master.key"
        assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    finally:
        proc.terminate()
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert b"/docs" in out


async def test_simulate_command_serves_provider_formats(env: dict[str, str]) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, "simulate", "--port", str(port), "--api-key", "sk-sim", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await _wait_ready(http, "/_sim/health")
            models = await http.get("/v1/models", headers={"Authorization": "Bearer sk-sim"})
            assert models.status_code == 200 and models.json()["object"] == "list"
            denied = await http.get("/v1/models", headers={"Authorization": "Bearer wrong"})
            assert denied.status_code == 401
            tags = await http.get("/api/tags")
            assert tags.status_code == 200 and tags.json()["models"]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 15)
