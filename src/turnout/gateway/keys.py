"""Provider credentials for the hot path, read from the secret store and cached briefly.

A cache entry lives ``ttl_s`` seconds, so a sealed or unreachable store stops new calls within
that time (fail closed); ``ttl_s=0`` reads the store on every call. The cached ``Credentials`` is
built once per read, so a request only reads its attributes.
"""

from __future__ import annotations

import time

from turnout.domain.snapshot import ProviderEntry
from turnout.providers.credentials import NO_CREDENTIALS, Credentials
from turnout.secrets.base import SecretStore


class ProviderKeys:
    """``get(provider)`` returns its credential (empty when it has none) or raises
    SecretStoreUnavailable."""

    def __init__(self, store: SecretStore, ttl_s: float = 60.0) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Credentials]] = {}

    async def get(self, provider: ProviderEntry) -> Credentials:
        if provider.api_key_ref is None:
            return NO_CREDENTIALS
        cached = self._cache.get(provider.api_key_ref)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        value = Credentials(await self._store.get_fields(provider.api_key_ref))
        if self._ttl_s > 0:
            self._cache[provider.api_key_ref] = (now, value)
        return value

    def forget(self, ref: str | None = None) -> None:
        """Drop one cached credential (after rotation) or all of them."""
        if ref is None:
            self._cache.clear()
        else:
            self._cache.pop(ref, None)
