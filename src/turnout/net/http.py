"""The one pooled aiohttp client session of a process."""

from __future__ import annotations

import aiohttp

from turnout.config import Settings
from turnout.net.ssrf import GuardedResolver, guarded_socket


def make_client_session(settings: Settings) -> aiohttp.ClientSession:
    """A pooled session with explicit timeouts; blocked addresses are refused at connect time, both
    when a name resolves to one and when the URL names one literally.

    No cookie jar: one tenant's upstream cookies must never ride along on another's request (and
    the jar's per-request filtering is work the gateway never needs)."""
    guarded = not settings.allow_private_api_base
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=0,
        ttl_dns_cache=60,
        resolver=GuardedResolver() if guarded else None,
        socket_factory=guarded_socket if guarded else None,  # IP literals never reach the resolver
    )
    timeout = aiohttp.ClientTimeout(
        total=settings.http_total_timeout_s,
        sock_connect=settings.http_connect_timeout_s,
        sock_read=settings.http_read_timeout_s,
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, raise_for_status=False, cookie_jar=aiohttp.DummyCookieJar()
    )


class HttpClient:
    """Holds the process's one pooled session, created lazily inside the running event loop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The shared session (re-created if it was closed)."""
        if self._session is None or self._session.closed:
            self._session = make_client_session(self._settings)
        return self._session

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
