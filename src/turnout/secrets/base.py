"""The SecretStore contract shared by every backend."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from turnout.errors import NotFound, ServiceUnavailable


class SecretStoreUnavailable(ServiceUnavailable):
    """The store cannot be used right now (unreachable, sealed, denied). Fail closed: 503."""

    code = "secret_store_unavailable"


class SecretNotFound(NotFound):
    """No secret at that reference."""

    code = "secret_not_found"


@runtime_checkable
class SecretStore(Protocol):
    """Stores provider API keys by reference; values never leave it except to the caller that needs them."""

    backend: str

    def ref_for(self, provider_id: str) -> str:
        """The reference under which ``provider_id``'s key lives (e.g. ``secret/llm/openrouter``)."""
        ...

    async def put(self, ref: str, value: str) -> None:
        """Create or replace the secret at ``ref``."""
        ...

    async def get(self, ref: str) -> str:
        """Return the secret at ``ref``; raise SecretNotFound or SecretStoreUnavailable."""
        ...

    async def delete(self, ref: str) -> None:
        """Remove the secret at ``ref`` (no error if absent)."""
        ...

    async def check(self) -> None:
        """Raise SecretStoreUnavailable if the store cannot serve reads now."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def mask_secret(value: str) -> str:
    """A hint safe to show: the last 4 characters at most, fewer for short keys."""
    if len(value) >= 12:
        return "…" + value[-4:]
    return "…"
