"""A provider's API key never reaches a caller, a record, a log line or the database, whatever form
its upstream echoes it in (the class of LiteLLM's CVE-2024-9606).

Each provider type gets its own key shape, and a hostile upstream echoes the key it was sent in
401s, 503s, plain-text 500s, 200s with an error body and mid-stream error events: raw, without its
vendor prefix, upper-cased, base64'd and JSON-escaped. Callers use both client dialects.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import string
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text

from tests.live_server import serve
from tests.security.hostile import FORMS, MODES, HostileUpstream, echo_form
from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.store.migrate import upgrade


def _alnum(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


# provider type -> a key of the shape that provider really uses
KEY_SHAPES = {
    "openai": lambda: "sk-proj-" + _alnum(48),
    "openrouter": lambda: "sk-or-v1-" + secrets.token_hex(32),
    "azure": lambda: secrets.token_hex(16),  # 32 hex digits, no prefix
    "custom": lambda: _alnum(40),  # an unprefixed key of a self-hosted server
    "anthropic": lambda: "sk-ant-api03-" + _alnum(86) + "-" + _alnum(6) + "AA",
    "ollama": lambda: _alnum(32),
}


@dataclass
class Leaky:
    url: str
    http: httpx.AsyncClient
    container: Container
    keys: dict[str, str]  # provider id -> its key
    agent_key: str
    upstream: HostileUpstream


@pytest.fixture
async def leaky(settings: Settings) -> AsyncIterator[Leaky]:
    """Turnout (live, on SQLite and PostgreSQL) in front of a hostile upstream, one provider of each
    type with its own key, a model per (mode, form) at each, an agent allowed to use them all."""
    settings = settings.model_copy(
        update={"retry_base_delay_s": 0.001, "retry_max_delay_s": 0.002, "record_flush_interval_s": 0.05}
    )
    container = Container.build(settings)
    await upgrade(container.engine)
    upstream = HostileUpstream()
    base = await upstream.start()
    keys = {ptype: shape() for ptype, shape in KEY_SHAPES.items()}
    try:
        # 150-odd admin calls set the stage; a loaded 2-core CI runner once took over httpx's
        # default 5 s over one of them, which says nothing about leaks
        async with (
            serve(create_app(container=container)) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            root = container.jwt.mint("root", "platform", ["platform_admin"])
            admin = {"Authorization": f"Bearer {root}"}
            for ptype, key in keys.items():
                api_base = base if ptype in ("anthropic", "ollama", "azure") else f"{base}/v1"
                spec = {"id": ptype, "display_name": ptype, "provider_type": ptype, "api_base": api_base}
                created = await http.post(
                    "/api/v2/admin/providers", json={**spec, "api_key": key}, headers=admin
                )
                assert created.status_code == 201, created.text
                for mode in MODES:
                    for form in FORMS:
                        model = {"provider_id": ptype, "external_id": f"{mode}-{form}"}
                        made = await http.post("/api/v2/admin/models", json=model, headers=admin)
                        assert made.status_code == 201, made.text
            owner = {"Authorization": f"Bearer {container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
            assert (
                await http.post("/api/v2/agents", json={"id": "bot", "name": "Bot"}, headers=owner)
            ).is_success
            for ptype in keys:
                enabled = await http.post(
                    "/api/v2/agents/bot/models", json={"bulk_filter": {"provider": ptype}}, headers=owner
                )
                assert enabled.status_code == 200, enabled.text
            agent_key = (await http.post("/api/v2/agents/bot/keys", json={}, headers=owner)).json()["key"]
            yield Leaky(url, http, container, keys, agent_key, upstream)
    finally:
        await upstream.stop()
        await container.aclose()


def _forms(key: str) -> list[str]:
    return sorted({echo_form(key, form) for form in FORMS}, key=len, reverse=True)


def _leaks(blob: str, keys: dict[str, str]) -> list[str]:
    """Every (provider, form) of a key found in ``blob``, case-insensitively."""
    lowered = blob.lower()
    return [
        f"{ptype}:{form}" for ptype, key in keys.items() for form in _forms(key) if form.lower() in lowered
    ]


async def _call(env: Leaky, dialect: str, model: str, stream: bool) -> str:
    """One call; the whole answer (status, headers and body) as text."""
    if dialect == "openai":
        path, headers = "/v1/chat/completions", {"Authorization": f"Bearer {env.agent_key}"}
        body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    else:
        path, headers = "/v1/messages", {"x-api-key": env.agent_key, "anthropic-version": "2023-06-01"}
        body = {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    async with env.http.stream("POST", path, json=body, headers=headers, timeout=20) as resp:
        raw = b"".join([part async for part in resp.aiter_raw()])
    return f"{resp.status_code} {dict(resp.headers)} {raw.decode('utf-8', 'replace')}"


async def _stored_rows(container: Container) -> str:
    async with container.sessions() as session:
        rows = (await session.execute(text("SELECT * FROM messages"))).all()
        providers = (await session.execute(text("SELECT * FROM llm_providers"))).all()
    return repr(rows) + repr(providers)


def _database_dump(settings: Settings) -> str:
    """Everything the database holds, as pg_dump (PostgreSQL) or the raw files (SQLite) show it."""
    url = settings.database_url
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        return "".join(p.read_bytes().decode("latin-1") for p in files)
    parts = urlsplit(url.replace("+asyncpg", ""))
    dump = subprocess.run(
        ["pg_dump", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U",
         parts.username or "postgres", parts.path.lstrip("/")],
        capture_output=True, text=True, check=True, timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )  # fmt: skip
    return dump.stdout


async def test_no_form_of_a_provider_key_reaches_callers_records_logs_or_the_database(
    capfd: pytest.CaptureFixture[str],  # first: capturing before the app configures its log stream
    leaky: Leaky,
    settings: Settings,
) -> None:
    answers: list[str] = []
    for ptype in KEY_SHAPES:
        for mode in MODES:
            for form in FORMS:
                model = f"{ptype}/{mode}-{form}"
                for dialect in ("openai", "anthropic"):
                    answer = await _call(leaky, dialect, model, stream=mode == "stream")
                    assert answer[:3] != "500", answer
                    answers.append(f"{model} {dialect}: {answer}")
    assert leaky.upstream.calls >= len(answers), "every call reached the echoing upstream"
    echoed = [a for a in answers if "Incorrect API key provided" in a]
    assert len(echoed) > len(answers) // 2, "the upstream's messages are passed on (scrubbed)"
    assert not _leaks("\n".join(answers), leaky.keys), "a key reached a caller"

    await leaky.container.records.stop()  # every record stored before the records are read
    rows = await _stored_rows(leaky.container)
    assert rows.count("Incorrect API key provided") >= len(answers) // 2, "the errors are recorded"
    assert not _leaks(rows, leaky.keys), "a key was stored in a record"
    await asyncio.sleep(0)
    logged = capfd.readouterr()
    assert logged.err.count('"event": "upstream.error"') >= len(answers) // 2, "the errors were logged"
    assert not _leaks(logged.out + logged.err, leaky.keys), "a key was logged"
    assert not _leaks(_database_dump(settings), leaky.keys), "a key is in the database"


def test_redaction_catches_every_form_of_a_key_it_was_given() -> None:
    from turnout.redaction import REDACTED, redact_text

    key = "sk-ant-api03-" + _alnum(40)
    for form in FORMS:
        echoed = f"bad key {echo_form(key, form)}!"
        assert redact_text(echoed, key) == f"bad key {REDACTED}!", form
    hexkey = secrets.token_hex(16)
    assert hexkey.upper() not in redact_text(f"key {hexkey.upper()} rejected", hexkey)
    assert redact_text("the tk-0123456789abcdef.AbCdEfGhIjKlMnOpQrStUv key", None).count(REDACTED) == 1
