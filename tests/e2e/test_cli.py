"""The `turnout` command line as a user runs it: serve, token, providers, models."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.services import create_pg_database, drop_pg_database
from tests.upstreams.models_server import ModelsUpstream
from turnout.auth.jwt_tokens import JwtCodec
from turnout.store.migrate import head_revision

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


async def test_a_provider_added_free_syncs_every_model_free(
    env: dict[str, str], upstream: ModelsUpstream
) -> None:
    base = f"{upstream.base_url}/api/v1"
    code, out = await _turnout(env, "providers", "add", "flat", "--type", "openrouter", "--api-base", base,
                               "--api-key-env", "OR_KEY", "--free", "--default-price-input", "1")  # fmt: skip
    assert code == 2 and "exclude each other" in out, out
    code, out = await _turnout(env, "providers", "add", "flat", "--type", "openrouter", "--api-base", base,
                               "--api-key-env", "OR_KEY", "--free")  # fmt: skip
    assert code == 0, out
    assert (await _turnout(env, "providers", "sync", "flat"))[0] == 0
    code, out = await _turnout(env, "models", "list", "--provider", "flat", "--tier", "free")
    assert code == 0 and "flat/openai/gpt-4o " in out and "of 30" in out, out


async def test_adding_a_provider_refuses_an_unset_key_variable(
    env: dict[str, str], upstream: ModelsUpstream
) -> None:
    """It said "created provider oa2 (key ref: none)" and exited 0: the provider had no key."""
    unset = {k: v for k, v in env.items() if k != "MISSING_VAR"}
    base = f"{upstream.base_url}/api/v1"
    code, out = await _turnout(unset, "providers", "add", "oa2", "--type", "openai", "--api-base", base,
                               "--api-key-env", "MISSING_VAR")  # fmt: skip
    assert code == 2 and "MISSING_VAR" in out and "created" not in out, out
    code, out = await _turnout(env, "providers", "list")
    assert code == 0 and "oa2" not in out, out


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


@pytest.mark.parametrize("ttl", ["0", "-60"])
async def test_token_refuses_a_lifetime_that_is_not_positive(env: dict[str, str], ttl: str) -> None:
    """It printed a token already expired and exited 0."""
    code, out = await _turnout(env, "token", "--sub", "a", "--tenant", "t", "--role", "user", "--ttl", ttl)
    assert code == 2 and "--ttl" in out and "eyJ" not in out, out


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, "9191", "http://127.0.0.1:9191/ui/login?token="),
        ("0.0.0.0", "9192", "http://127.0.0.1:9192/ui/login?token="),  # listens everywhere: this machine
        ("::", "9193", "http://[::1]:9193/ui/login?token="),
        ("gw.internal", "9194", "http://gw.internal:9194/ui/login?token="),
    ],
)
async def test_login_link_points_at_the_configured_port(
    env: dict[str, str], host: str | None, port: str, expected: str
) -> None:
    """Without --url it linked to port 8080 whatever TURNOUT_PORT said."""
    configured = {**env, "TURNOUT_PORT": port} | ({"TURNOUT_HOST": host} if host else {})
    code, out = await _turnout(configured, "login-link", "--sub", "a", "--tenant", "t", "--role", "user")
    assert code == 0 and out.strip().splitlines()[-1].startswith(expected), out
    code, out = await _turnout(
        configured, "login-link", "--sub", "a", "--tenant", "t", "--role", "user", "--url", "http://x:1"
    )
    assert code == 0 and out.strip().splitlines()[-1].startswith("http://x:1/ui/login?token="), out


async def test_login_link_asks_for_the_url_when_the_port_is_any(env: dict[str, str]) -> None:
    code, out = await _turnout(
        {**env, "TURNOUT_PORT": "0"}, "login-link", "--sub", "a", "--tenant", "t", "--role", "user"
    )
    assert code == 2 and "TURNOUT_PORT" in out and "--url" in out and "token=" not in out, out


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


def _home_env(env: dict[str, str], home: Path) -> dict[str, str]:
    """The user's environment with only the per-user data dir to go by (no TURNOUT_* paths)."""
    clean = {k: v for k, v in env.items() if k not in ("TURNOUT_DATABASE_URL", "TURNOUT_DATA_DIR")}
    return {**clean, "XDG_DATA_HOME": str(home)}


async def test_tokens_minted_anywhere_are_accepted_by_the_server(env: dict[str, str], tmp_path: Path) -> None:
    home = _home_env(env, tmp_path / "xdg")
    (tmp_path / "repo").mkdir()
    (tmp_path / "elsewhere").mkdir()
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, "serve", "--port", str(port), env=home, cwd=tmp_path / "repo",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await _wait_ready(http, "/healthz")
            minted = await asyncio.create_subprocess_exec(
                TURNOUT, "token", "--sub", "a", "--tenant", "p", "--role", "platform_admin",
                env=home, cwd=tmp_path / "elsewhere", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            token, warnings = await asyncio.wait_for(minted.communicate(), 30)
            assert not warnings, "the CLI found the server's key file: nothing new was created"
            resp = await http.get(
                "/api/v2/admin/providers", headers={"Authorization": f"Bearer {token.decode().strip()}"}
            )
            assert resp.status_code == 200, resp.text
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 15)
    data = tmp_path / "xdg" / "turnout"
    assert (data / "turnout.db").exists() and (data / "jwt.key").exists()
    assert not (tmp_path / "repo" / "turnout.db").exists()
    assert not (tmp_path / "elsewhere" / ".turnout").exists()


async def test_a_new_key_file_is_named_on_stderr(env: dict[str, str], tmp_path: Path) -> None:
    home = _home_env(env, tmp_path / "fresh")
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, "token", "--sub", "a", "--tenant", "p", "--role", "user", env=home,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and out.count(b".") == 2, "a JWT on stdout, alone"
    assert str(tmp_path / "fresh" / "turnout" / "jwt.key") in err.decode()


async def test_workers_starting_together_share_one_complete_private_key(tmp_path: Path) -> None:
    code = "from turnout.config import Settings; print(Settings().jwt_secret_value)"
    env = {**os.environ, "TURNOUT_DATA_DIR": str(tmp_path / "data")}
    env.pop("TURNOUT_JWT_SECRET", None)
    pipe = asyncio.subprocess.PIPE
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env, stdout=pipe, stderr=pipe)
        for _ in range(12)
    ]
    results = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode()[-300:] for _, err in results]
    secrets_seen = {out.strip() for out, _ in results}
    assert len(secrets_seen) == 1 and len(next(iter(secrets_seen))) == 64, secrets_seen
    key_file = tmp_path / "data" / "jwt.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["jwt.key"], "no temporary file left behind"


async def test_the_cli_starts_without_loading_the_application(env: dict[str, str]) -> None:
    probe = (
        "import sys; from turnout.cli import app\n"
        "sys.argv = ['turnout', 'token', '--sub', 'a', '--tenant', 't', '--role', 'user']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'aiohttp', 'turnout.container') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert "HEAVY []" in err.decode(), err.decode()


async def test_cli_errors_are_one_readable_line(env: dict[str, str], upstream: ModelsUpstream) -> None:
    def said(out: str) -> list[str]:  # the lines besides the notice of a newly created key file
        return [line for line in out.strip().splitlines() if not line.startswith("turnout: created")]

    code, out = await _turnout(
        env, "providers", "add", "bad id", "--type", "openai", "--api-base", "http://x"
    )
    assert code == 2 and len(said(out)) == 1 and "errors.pydantic.dev" not in out, out
    assert said(out)[0].startswith("error: invalid input: id:"), out
    code, out = await _turnout({**env, "TURNOUT_PORT": "eighty"}, "migrate")
    assert code == 1 and len(said(out)) == 1 and "port" in out and "pydantic.dev" not in out, out
    code, out = await _turnout(env, "providers", "add", "or", "--type", "openrouter", "--api-base",
                               f"{upstream.base_url}/api/v1")  # fmt: skip
    assert code == 0, out
    code, out = await _turnout(env, "providers", "test", "or")
    assert code == 1 and "{" not in out and said(out)[-1].startswith("failed: or:"), out
    code, out = await _turnout(env, "serve", "--help")
    assert "127.0.0.1" in out and "8080" in out, out


async def test_the_banner_comes_after_the_bind_in_one_pasteable_line(env: dict[str, str]) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, "serve", "--port", str(port), env={**env, "COLUMNS": "40"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200, "the banner means the port is bound"
            assert f"http://127.0.0.1:{port}/docs" in line and line.count("\n") == 1
            command = line.split("admin token: ", 1)[1].strip()  # pasted as printed, 40 columns or not
            minted = await asyncio.create_subprocess_shell(
                command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            token, _ = await asyncio.wait_for(minted.communicate(), 30)
            resp = await http.get(
                "/api/v2/admin/providers", headers={"Authorization": f"Bearer {token.decode().strip()}"}
            )
            assert resp.status_code == 200, resp.text
            ui = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
            assert "token=" not in ui and "login-link" in ui, "no sign-in credential in a log, every start"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 15)


async def test_nats_unreachable_at_start_up_is_a_warning(env: dict[str, str]) -> None:
    """nats-py's first connect retries forever and reports only through its error callback, which
    logged at debug: an operator with a wrong TURNOUT_NATS_URL saw nothing at all."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, "serve", "--port", str(port), env={**env, "TURNOUT_NATS_URL": "nats://127.0.0.1:1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    seen = ""
    try:
        assert proc.stdout is not None
        deadline = asyncio.get_running_loop().time() + 30
        while "events.nats_error" not in seen and asyncio.get_running_loop().time() < deadline:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line:
                break
            seen += line.decode()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 15)
    warned = next(json.loads(x) for x in seen.splitlines() if "events.nats_error" in x)
    assert warned["level"] == "warning" and warned["url"] == "nats://127.0.0.1:1", warned


@pytest.mark.parametrize("how", ["TURNOUT_PORT", "--port"])
async def test_a_busy_port_stops_start_up_naming_the_setting(env: dict[str, str], how: str) -> None:
    """It logged "serving", loaded the app, then printed uvicorn's JSON "[Errno 98] address already
    in use" line and exited with status 3."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        verbose = {**env, "TURNOUT_LOG_LEVEL": "INFO"}
        if how == "--port":
            code, out = await _turnout(verbose, "serve", "--port", str(port))
        else:
            code, out = await _turnout({**verbose, "TURNOUT_PORT": str(port)}, "serve")
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), out
    assert "--port or TURNOUT_PORT" in out and f"127.0.0.1:{port}" in out, out
    assert "address already in use" in out and "Turnout on" not in out, out


@pytest.mark.parametrize(
    ("option", "value"), [("--page", "-1"), ("--page", "0"), ("--per-page", "0"), ("--per-page", "501")]
)
async def test_models_list_refuses_a_page_out_of_range_naming_the_option(
    env: dict[str, str], option: str, value: str
) -> None:
    """As the API does (page >= 1, per_page 1-500); PostgreSQL answered a negative one with an SQL
    error printed to the user."""
    code, out = await _turnout(env, "models", "list", option, value)
    assert code == 2 and option in out and "Traceback" not in out and "SQL" not in out, out


@pytest.mark.parametrize("port", ["-5", "65536", "99999"])
async def test_serve_refuses_a_port_out_of_range(env: dict[str, str], port: str) -> None:
    """99999 used to bind 34463 (the number wrapped) with no word; -5 failed deep in uvicorn."""
    code, out = await _turnout(env, "serve", "--port", port)
    assert code == 2 and "--port" in out and "Turnout on" not in out, out
    code, out = await _turnout({**env, "TURNOUT_PORT": port}, "serve")
    assert code == 1 and "port" in out and "Turnout on" not in out and "pydantic.dev" not in out, out


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TURNOUT_RECORD_FLUSH_INTERVAL_S", "0"),  # the writer's loop would spin a core
        ("TURNOUT_SNAPSHOT_INTERVAL_S", "-1"),
        ("TURNOUT_FEEDBACK_SYNC_INTERVAL_S", "0"),
        ("TURNOUT_HTTP_READ_TIMEOUT_S", "-5"),
        ("TURNOUT_FIRST_BYTE_TIMEOUT_S", "0"),
        ("TURNOUT_RETRY_MAX", "-1"),
        ("TURNOUT_BREAKER_THRESHOLD", "0"),
        ("TURNOUT_RECORD_BATCH_SIZE", "0"),
        ("TURNOUT_MAX_BODY_BYTES", "-1"),
        ("TURNOUT_JWT_DEFAULT_TTL_S", "0"),
        ("TURNOUT_LOG_LEVEL", "LOUD"),  # it died later with "error: 'level loud'"
        ("TURNOUT_JWT_SECRET", ""),  # a secret left unset: it died with "HMAC key must not be empty"
    ],
)
async def test_a_setting_out_of_range_stops_start_up_naming_it(
    env: dict[str, str], variable: str, value: str
) -> None:
    code, out = await _turnout({**env, variable: value}, "migrate")
    name = variable.removeprefix("TURNOUT_").lower()
    assert code == 1 and name in out.lower() and "pydantic.dev" not in out and "Value error" not in out, out


async def test_migrate_says_what_it_applied(env: dict[str, str]) -> None:
    """``turnout migrate`` names the migrations it applied, then says there is nothing to apply (it
    said "up to date" either way, so an operator could not tell an upgrade from a no-op)."""
    head = head_revision()
    code, out = await _turnout(env, "migrate")
    count = int(head)  # revisions are numbered from 0001 (a test holds the project to that)
    assert (
        code == 0
        and f"applied {count} migrations (0001, " in out
        and f"{head}); database is at {head}" in out
    ), out
    code, out = await _turnout(env, "migrate")
    assert code == 0 and "database is up to date, nothing to apply" in out and "applied" not in out, out


async def test_a_database_url_without_a_driver_is_accepted(env: dict[str, str], empty_db_url: str) -> None:
    """``postgresql://...`` (as every other tool writes it) failed with "No module named 'psycopg'"."""
    plain = empty_db_url.replace("+asyncpg", "").replace("+aiosqlite", "")
    assert "+" not in plain.split("://", 1)[0]
    code, out = await _turnout({**env, "TURNOUT_DATABASE_URL": plain}, "migrate")
    assert code == 0 and f"database is at {head_revision()}" in out, out
    short = plain.replace("postgresql://", "postgres://", 1)  # Heroku's and others' spelling
    code, out = await _turnout({**env, "TURNOUT_DATABASE_URL": short}, "providers", "list")
    assert code == 0 and "error:" not in out and "last synced" in out, out


async def test_an_unreachable_database_stops_start_up_naming_the_setting(env: dict[str, str]) -> None:
    """It said only asyncpg's "[Errno 111] Connect call failed ('127.0.0.1', 1)"."""
    unreachable = {**env, "TURNOUT_DATABASE_URL": "postgresql+asyncpg://ann:hunter2pw@127.0.0.1:1/x"}
    for command in ("migrate", "serve"):
        code, out = await _turnout(unreachable, command)
        assert code == 1 and "TURNOUT_DATABASE_URL" in out and "127.0.0.1:1/x" in out, out
        assert "hunter2pw" not in out and "Turnout on" not in out and "Traceback" not in out, out


async def test_a_busy_metrics_port_stops_start_up_naming_the_setting(env: dict[str, str]) -> None:
    """It was a lifespan traceback ending in "OSError: [Errno 98] Address already in use"."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out = await _turnout({**env, "TURNOUT_METRICS_PORT": str(port)}, "serve", "--port", "0")
    assert code == 1 and "TURNOUT_METRICS_PORT" in out and "address already in use" in out, out
    assert "Traceback" not in out and "Turnout on" not in out, out


async def test_a_bind_address_that_does_not_resolve_stops_start_up_naming_the_setting(
    env: dict[str, str],
) -> None:
    """It was uvicorn's bare "[Errno -2] Name or service not known"."""
    code, out = await _turnout({**env, "TURNOUT_HOST": "no-such-host.invalid"}, "serve", "--port", "0")
    assert code == 1 and "TURNOUT_HOST" in out and "no-such-host.invalid" in out, out
    assert "Turnout on" not in out, out


async def test_a_bind_address_not_of_this_machine_stops_start_up_naming_the_setting(
    env: dict[str, str],
) -> None:
    """It loaded the app, then exited with status 3 after uvicorn's "[Errno 99]" log line."""
    code, out = await _turnout({**env, "TURNOUT_HOST": "192.0.2.1"}, "serve", "--port", str(_free_port()))
    assert code == 1 and "TURNOUT_HOST" in out and "192.0.2.1" in out and "Turnout on" not in out, out


@pytest.mark.postgres
@pytest.mark.parametrize(
    "query",
    [
        "?sslmode=disable",
        "?sslmode=prefer",
        "?connect_timeout=10&application_name=turnout&options=-c%20statement_timeout%3D5000",
    ],
)
async def test_a_postgresql_url_with_libpqs_parameters_migrates_and_runs(
    env: dict[str, str], query: str
) -> None:
    """libpq's parameters, as psql, Heroku, RDS and Helm charts write them, failed at connect with
    "connect() got an unexpected keyword argument 'sslmode'" (or 'connect_timeout'); they now reach
    asyncpg as its ``ssl``, ``timeout`` and server settings. The local server has no TLS, so
    ``disable`` and ``prefer`` connect."""
    url, name = await create_pg_database()
    try:
        plain = url.replace("+asyncpg", "") + query
        code, out = await _turnout({**env, "TURNOUT_DATABASE_URL": plain}, "migrate")
        assert code == 0 and f"database is at {head_revision()}" in out, out
        code, out = await _turnout({**env, "TURNOUT_DATABASE_URL": plain}, "providers", "list")
        assert code == 0 and "error:" not in out, out
    finally:
        await drop_pg_database(name)


async def test_a_libpq_parameter_asyncpg_has_no_use_for_is_refused_in_one_line(env: dict[str, str]) -> None:
    """``keepalives=1`` failed at connect with asyncpg's "connect() got an unexpected keyword
    argument 'keepalives'"; now the settings are refused before connecting, saying what to do."""
    plain = "postgresql://postgres@127.0.0.1:5432/test?keepalives=1"
    code, out = await _turnout({**env, "TURNOUT_DATABASE_URL": plain}, "migrate")
    assert code != 0 and "asyncpg takes no keepalives; remove it from TURNOUT_DATABASE_URL" in out, out
    assert "Traceback" not in out, out


async def test_several_bad_fields_are_named_once_each_in_the_api_s_words(
    env: dict[str, str], client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """`turnout providers add` with five bad values says all five on one line, each field once, in
    the words POST /api/v2/admin/providers answers the same body with (one formatter for both)."""
    code, out = await _turnout(env, "providers", "add", "Bad Id", "--type", "nope", "--api-base", "",
                               "--rpm", "0", "--default-price-input", "-1")  # fmt: skip
    lines = [line for line in out.strip().splitlines() if not line.startswith("turnout: created")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: invalid input: "), out
    said = lines[0].removeprefix("error: invalid input: ")
    named = [part.split(":", 1)[0] for part in said.split("; ")]
    assert named == ["id", "provider_type", "api_base", "rate_limit_rpm", "default_price_input"], said
    body = {"id": "Bad Id", "display_name": "Bad Id", "provider_type": "nope", "api_base": "",
            "rate_limit_rpm": 0, "default_price_input": -1}  # fmt: skip
    api = await client.post("/api/v2/admin/providers", json=body, headers=admin)
    assert api.status_code == 400 and api.json()["error"]["message"] == said, (api.text, said)
