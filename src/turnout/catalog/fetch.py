"""Ask a provider for its models over HTTP and normalize the answer (no database here).

Default models URLs (``api_base`` + path, unless ``models_endpoint`` names another path):

* openai, custom, openrouter: ``/models`` (``api_base`` includes the version, e.g.
  ``https://api.openai.com/v1``, ``https://openrouter.ai/api/v1``);
* anthropic: ``/v1/models``, or ``/models`` when ``api_base`` already ends in ``/v1``;
* azure: ``/openai/models?api-version=...`` (``/models`` when ``api_base`` ends in ``/openai``);
  ``api_version`` defaults to ``2024-10-21``;
* ollama: ``/api/tags`` on the server root (a trailing ``/v1`` or ``/api`` is dropped).

Each HTTP request gets ``timeout_s``; Anthropic pages are requested one after another.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from turnout.catalog.discovered import DiscoveredModel, UnexpectedPayload
from turnout.catalog.formats import WIRE_FORMATS, WireFormat
from turnout.errors import TurnoutError, UpstreamError

ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_PAGE_LIMIT = 1000
AZURE_API_VERSION = "2024-10-21"
MAX_PAGES = 1000
MAX_BODY_BYTES = 256 << 20
_BIG_BODY = 1 << 20  # answers this big are parsed off the event loop, with the GC paused
_DETAIL_CHARS = 300


class ProviderSyncError(UpstreamError):
    """Listing a provider's models failed; ``status`` is the provider's HTTP status, if any."""

    code = "provider_sync_failed"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ProviderConnection:
    """Where and how to reach a provider's models endpoint."""

    provider_type: str
    api_base: str
    models_endpoint: str | None = None
    api_version: str | None = None


def _format(conn: ProviderConnection) -> WireFormat:
    try:
        return WIRE_FORMATS[conn.provider_type]
    except KeyError:
        raise ProviderSyncError(f"unsupported provider type {conn.provider_type!r}") from None


def _default_path(provider_type: str, base: str, default: str) -> tuple[str, str]:
    if provider_type == "anthropic" and base.endswith("/v1"):
        return base, "/models"
    if provider_type == "azure" and base.endswith("/openai"):
        return base, "/models"
    if provider_type == "ollama":
        for suffix in ("/v1", "/api"):
            if base.endswith(suffix):
                base = base.removesuffix(suffix)
    return base, default


def models_url(conn: ProviderConnection) -> tuple[str, dict[str, str]]:
    """The models URL and query parameters for a connection (see the module docstring)."""
    base = conn.api_base.rstrip("/")
    endpoint = conn.models_endpoint
    if endpoint:
        if "://" in endpoint:
            raise ProviderSyncError("models_endpoint must be a path relative to api_base, not a URL")
        url = f"{base}/{endpoint.lstrip('/')}"
    else:
        base, path = _default_path(conn.provider_type, base, _format(conn).default_path)
        url = base + path
    params: dict[str, str] = {}
    if conn.provider_type == "azure" and "api-version=" not in url:
        params["api-version"] = conn.api_version or AZURE_API_VERSION
    return url, params


def auth_headers(provider_type: str, api_key: str | None) -> dict[str, str]:
    """The headers a provider expects on a models request."""
    headers = {"Accept": "application/json"}
    if provider_type == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if api_key:
            headers["x-api-key"] = api_key
    elif provider_type == "azure":
        if api_key:
            headers["api-key"] = api_key
    elif api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _scrub(text: str, api_key: str | None) -> str:
    return text.replace(api_key, "[redacted]") if api_key else text


def _where(url: str) -> str:
    """The URL without credentials, query or fragment, for messages."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()


def _error_detail(body: bytes) -> str:
    """The provider's own error message (OpenAI/Anthropic/Azure/Ollama shapes), else the text."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = " ".join(body[:_DETAIL_CHARS].decode("utf-8", "replace").split())
        return text or "empty body"
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, str):
            return err[:_DETAIL_CHARS]
        if isinstance(err, dict):
            for key in ("message", "detail", "error"):
                if isinstance(err.get(key), str):
                    return str(err[key])[:_DETAIL_CHARS]
    return orjson.dumps(payload)[:_DETAIL_CHARS].decode("utf-8", "replace")


async def _get(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    timeout_s: float,
) -> tuple[int, bytes, str | None]:
    """Status, body (at most ``MAX_BODY_BYTES``) and redirect target of one GET."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.get(
        url, params=params, headers=headers, timeout=timeout, allow_redirects=False
    ) as resp:
        body = bytearray()
        async for chunk in resp.content.iter_chunked(1 << 20):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise ProviderSyncError(f"answer larger than {MAX_BODY_BYTES >> 20} MiB", resp.status)
        return resp.status, bytes(body), resp.headers.get("Location")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: decoding a big list creates ~1M containers it would rescan over and over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_page(body: bytes, fmt: WireFormat, provider_type: str) -> tuple[list[DiscoveredModel], str | None]:
    """Decode (orjson) and parse one answer; raises ``orjson.JSONDecodeError`` / ``UnexpectedPayload``."""
    if len(body) < _BIG_BODY:
        return fmt.parse_page(orjson.loads(body), provider_type)
    with _gc_paused():
        return fmt.parse_page(orjson.loads(body), provider_type)


async def _fetch_page(
    session: aiohttp.ClientSession,
    conn: ProviderConnection,
    api_key: str | None,
    params: dict[str, str],
    timeout_s: float,
) -> tuple[int, list[DiscoveredModel], str | None]:
    fmt = _format(conn)
    url, base_params = models_url(conn)
    where = f"GET {_where(url)}"
    try:
        status, body, location = await _get(
            session, url, {**base_params, **params}, auth_headers(conn.provider_type, api_key), timeout_s
        )
    except ProviderSyncError as exc:
        raise ProviderSyncError(f"{where}: {exc.message}", exc.status) from None
    except TimeoutError:
        raise ProviderSyncError(f"{where}: no answer within {timeout_s:g}s") from None
    except aiohttp.ClientError as exc:
        detail = _scrub(str(exc), api_key)[:_DETAIL_CHARS]
        raise ProviderSyncError(f"{where}: connection failed ({type(exc).__name__}: {detail})") from None
    if 300 <= status < 400:
        target = _where(location or "?")
        message = f"{where}: HTTP {status}: redirected to {target} (redirects are not followed; fix api_base)"
        raise ProviderSyncError(message, status)
    if not 200 <= status < 300:
        detail = _scrub(_error_detail(body), api_key)
        raise ProviderSyncError(f"{where}: HTTP {status}: {detail}", status)
    try:
        if len(body) >= _BIG_BODY:
            models, cursor = await asyncio.to_thread(decode_page, body, fmt, conn.provider_type)
        else:
            models, cursor = decode_page(body, fmt, conn.provider_type)
    except orjson.JSONDecodeError:
        raise ProviderSyncError(f"{where}: unexpected response (not JSON)", status) from None
    except UnexpectedPayload as exc:
        raise ProviderSyncError(f"{where}: unexpected response ({exc})", status) from None
    return status, models, cursor


async def _fetch(
    session: aiohttp.ClientSession, conn: ProviderConnection, api_key: str | None, timeout_s: float
) -> tuple[int, list[DiscoveredModel]]:
    try:
        return await _fetch_all(session, conn, api_key, timeout_s)
    except ProviderSyncError as exc:
        if api_key and api_key in exc.message:  # last line of defence: never let the key out
            raise ProviderSyncError(_scrub(exc.message, api_key), exc.status) from None
        raise


async def _fetch_all(
    session: aiohttp.ClientSession, conn: ProviderConnection, api_key: str | None, timeout_s: float
) -> tuple[int, list[DiscoveredModel]]:
    fmt = _format(conn)
    params = {"limit": str(ANTHROPIC_PAGE_LIMIT)} if fmt.paginated else {}
    found: list[DiscoveredModel] = []
    seen_cursors: set[str] = set()
    while True:
        status, models, cursor = await _fetch_page(session, conn, api_key, params, timeout_s)
        found.extend(models)
        if cursor is None or not fmt.paginated:
            break
        if cursor in seen_cursors or len(seen_cursors) >= MAX_PAGES:
            raise ProviderSyncError(
                f"pagination did not end (cursor {cursor!r} after {len(seen_cursors)} pages)"
            )
        seen_cursors.add(cursor)
        params = {**params, "after_id": cursor}
    unique: dict[str, DiscoveredModel] = {}
    for model in found:
        unique.setdefault(model.external_id, model)
    return status, list(unique.values())


async def fetch_models(
    session: aiohttp.ClientSession, conn: ProviderConnection, api_key: str | None, *, timeout_s: float
) -> list[DiscoveredModel]:
    """All models a provider lists, normalized and deduplicated by id; raises ``ProviderSyncError``.

    Error messages carry the HTTP status and the provider's own message, never the API key.
    """
    return (await _fetch(session, conn, api_key, timeout_s))[1]


async def test_connection(
    session: aiohttp.ClientSession, conn: ProviderConnection, api_key: str | None, *, timeout_s: float
) -> dict[str, Any]:
    """Try listing models: ``{"ok", "latency_ms", "models_found", "error", "status"}``; never raises."""
    started = time.perf_counter()
    result: dict[str, Any] = {"ok": False, "models_found": None, "error": None, "status": None}
    try:
        status, models = await _fetch(session, conn, api_key, timeout_s)
    except ProviderSyncError as exc:
        result.update(error=exc.message, status=exc.status)
    except TurnoutError as exc:  # pragma: no cover - fetch only raises ProviderSyncError
        result.update(error=_scrub(exc.message, api_key))
    else:
        result.update(ok=True, models_found=len(models), status=status)
    result["latency_ms"] = int((time.perf_counter() - started) * 1000)
    return result


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
