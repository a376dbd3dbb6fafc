"""Ask a provider for its models over HTTP and normalize the answer (no database here).

What differs between providers comes from their spec (``turnout.providers``): the default models
URL (``ProviderSpec.models_url``; ``models_endpoint`` replaces it with a path under ``api_base``),
its query (Azure's ``api-version``), the auth headers and signing, the answer's format and its
pagination (Anthropic's ``limit``/``after_id``). This module only runs the requests: each gets
``timeout_s``, and pages are requested one after another.
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
from yarl import URL

from turnout.errors import TurnoutError, UpstreamError
from turnout.modelinfo.discovered import DiscoveredModel, UnexpectedPayload
from turnout.modelinfo.pricing import with_cache_prices
from turnout.providers.base import UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.registry import SPECS_BY_TYPE
from turnout.providers.spec import ProviderSpec, WireFormat
from turnout.redaction import redact_text

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
    price_id: str | None = None  # the provider's pricing source; None: its type's


def pricing_source(provider_type: str, price_id: str | None) -> str | None:
    """The genai-prices provider that prices a provider's models: its own ``price_id``, else its
    type's (``ProviderSpec.price_id``); None: guessed from each model id."""
    if price_id:
        return price_id
    spec = SPECS_BY_TYPE.get(provider_type)
    return spec.price_id if spec is not None else None


def _spec(conn: ProviderConnection) -> ProviderSpec:
    spec = SPECS_BY_TYPE.get(conn.provider_type)
    if spec is None:
        raise ProviderSyncError(f"unsupported provider type {conn.provider_type!r}")
    return spec


def models_url(conn: ProviderConnection) -> tuple[str, dict[str, str]]:
    """The models URL and query parameters for a connection (see the module docstring)."""
    spec = _spec(conn)
    endpoint = conn.models_endpoint
    if endpoint:
        if "://" in endpoint:
            raise ProviderSyncError("models_endpoint must be a path relative to api_base, not a URL")
        url = f"{conn.api_base.rstrip('/')}/{endpoint.lstrip('/')}"
    else:
        url = spec.models_url(conn.api_base)
    return url, spec.list_params(url, conn.api_version or spec.api_version)


def list_request(
    spec: ProviderSpec, url: str, params: dict[str, str], credentials: Credentials
) -> UpstreamRequest:
    """One models request, with the spec's headers, signed when its adapter signs requests."""
    target = URL(url)  # quoted once here and sent as is: a signature covers these exact bytes
    if params:
        target = target.extend_query(params)  # as aiohttp adds params= to a URL
    request = UpstreamRequest("GET", str(target), spec.list_headers(credentials), b"")
    if spec.sign is not None:
        spec.sign(request, credentials)
    return request


def _scrub(text: str, credentials: Credentials) -> str:
    return redact_text(text, *credentials.secrets)


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
    session: aiohttp.ClientSession, request: UpstreamRequest, timeout_s: float
) -> tuple[int, bytes, str | None]:
    """Status, body (at most ``MAX_BODY_BYTES``) and redirect target of one GET."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.get(
        URL(request.url, encoded=True), headers=request.headers, timeout=timeout, allow_redirects=False
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


def decode_page(
    body: bytes, fmt: WireFormat, price_id: str | None
) -> tuple[list[DiscoveredModel], str | None]:
    """Decode (orjson) and parse one answer (``price_id``: the provider's genai-prices source), with
    cache prices the answer lacks taken from genai-prices; raises ``orjson.JSONDecodeError`` /
    ``UnexpectedPayload``."""
    if len(body) < _BIG_BODY:
        models, cursor = fmt.parse_page(orjson.loads(body), price_id)
    else:
        with _gc_paused():
            models, cursor = fmt.parse_page(orjson.loads(body), price_id)
    return [with_cache_prices(price_id, m) if m.pricing_input else m for m in models], cursor


async def _fetch_page(
    session: aiohttp.ClientSession,
    conn: ProviderConnection,
    credentials: Credentials,
    params: dict[str, str],
    timeout_s: float,
) -> tuple[int, list[DiscoveredModel], str | None]:
    spec = _spec(conn)
    url, base_params = models_url(conn)
    where = f"GET {_where(url)}"
    try:
        request = list_request(spec, url, {**base_params, **params}, credentials)
        status, body, location = await _get(session, request, timeout_s)
    except ProviderSyncError as exc:
        raise ProviderSyncError(f"{where}: {exc.message}", exc.status) from None
    except TimeoutError:
        raise ProviderSyncError(f"{where}: no answer within {timeout_s:g}s") from None
    except aiohttp.ClientError as exc:
        detail = _scrub(str(exc), credentials)[:_DETAIL_CHARS]
        raise ProviderSyncError(f"{where}: connection failed ({type(exc).__name__}: {detail})") from None
    if 300 <= status < 400:
        target = _where(location or "?")
        message = f"{where}: HTTP {status}: redirected to {target} (redirects are not followed; fix api_base)"
        raise ProviderSyncError(message, status)
    if not 200 <= status < 300:
        detail = _scrub(_error_detail(body), credentials)
        raise ProviderSyncError(f"{where}: HTTP {status}: {detail}", status)
    price_id = pricing_source(conn.provider_type, conn.price_id)
    try:
        if len(body) >= _BIG_BODY:
            models, cursor = await asyncio.to_thread(decode_page, body, spec.models, price_id)
        else:
            models, cursor = decode_page(body, spec.models, price_id)
    except orjson.JSONDecodeError:
        raise ProviderSyncError(f"{where}: unexpected response (not JSON)", status) from None
    except UnexpectedPayload as exc:
        raise ProviderSyncError(f"{where}: unexpected response ({exc})", status) from None
    return status, models, cursor


async def _fetch(
    session: aiohttp.ClientSession, conn: ProviderConnection, credentials: Credentials, timeout_s: float
) -> tuple[int, list[DiscoveredModel]]:
    try:
        return await _fetch_all(session, conn, credentials, timeout_s)
    except ProviderSyncError as exc:
        # last line of defence: never let a credential out
        if any(secret in exc.message for secret in credentials.secrets):
            raise ProviderSyncError(_scrub(exc.message, credentials), exc.status) from None
        raise


async def _fetch_all(
    session: aiohttp.ClientSession, conn: ProviderConnection, credentials: Credentials, timeout_s: float
) -> tuple[int, list[DiscoveredModel]]:
    pagination = _spec(conn).models.pagination
    params = dict(pagination.first) if pagination is not None else {}
    found: list[DiscoveredModel] = []
    seen_cursors: set[str] = set()
    while True:
        status, models, cursor = await _fetch_page(session, conn, credentials, params, timeout_s)
        found.extend(models)
        if cursor is None or pagination is None:
            break
        if cursor in seen_cursors or len(seen_cursors) >= MAX_PAGES:
            raise ProviderSyncError(
                f"pagination did not end (cursor {cursor!r} after {len(seen_cursors)} pages)"
            )
        seen_cursors.add(cursor)
        params = {**params, pagination.cursor: cursor}
    unique: dict[str, DiscoveredModel] = {}
    for model in found:
        unique.setdefault(model.external_id, model)
    return status, list(unique.values())


Secret = Credentials | str | None  # a bare string is an API key


async def fetch_models(
    session: aiohttp.ClientSession, conn: ProviderConnection, credentials: Secret, *, timeout_s: float
) -> list[DiscoveredModel]:
    """All models a provider lists, normalized and deduplicated by id; raises ``ProviderSyncError``.

    Error messages carry the HTTP status and the provider's own message, never a credential.
    """
    return (await _fetch(session, conn, Credentials.of(credentials), timeout_s))[1]


async def test_connection(
    session: aiohttp.ClientSession, conn: ProviderConnection, credentials: Secret, *, timeout_s: float
) -> dict[str, Any]:
    """Try listing models: ``{"ok", "latency_ms", "models_found", "error", "status"}``; never raises."""
    started = time.perf_counter()
    result: dict[str, Any] = {"ok": False, "models_found": None, "error": None, "status": None}
    creds = Credentials.of(credentials)
    try:
        status, models = await _fetch(session, conn, creds, timeout_s)
    except ProviderSyncError as exc:
        result.update(error=exc.message, status=exc.status)
    except TurnoutError as exc:  # pragma: no cover - fetch only raises ProviderSyncError
        result.update(error=_scrub(exc.message, creds))
    else:
        result.update(ok=True, models_found=len(models), status=status)
    result["latency_ms"] = int((time.perf_counter() - started) * 1000)
    return result


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
