"""The SecretStore contract shared by every backend.

A provider's credential is a set of named fields (``{"api_key": "..."}`` today; AWS keys or a
service account for other clouds). ``put_fields``/``get_fields`` store and read it whole; ``put``/
``get`` keep working on a single string value. Secrets written before credentials had fields are
plain strings: they read back as ``{"api_key": value}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import orjson

from turnout.errors import NotFound, ServiceUnavailable
from turnout.redaction import KNOWN_SECRETS, PUBLIC_CREDENTIAL_FIELDS

LEGACY_FIELD = "api_key"  # what a plain-string secret is


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

    async def put_fields(self, ref: str, fields: Mapping[str, str]) -> None:
        """Create or replace the credential at ``ref`` (its named fields)."""
        ...

    async def get_fields(self, ref: str) -> dict[str, str]:
        """The credential at ``ref``: its fields, a plain-string secret as ``{"api_key": value}``."""
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


def encode_fields(fields: Mapping[str, str]) -> str:
    """A credential as one string value: a JSON object of its fields."""
    return orjson.dumps(dict(fields)).decode()


def decode_fields(value: str) -> dict[str, str]:
    """The fields of a stored value: a JSON object of strings, else (a plain key written before
    credentials had fields) ``{"api_key": value}``."""
    if value.startswith("{"):
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and obj and all(isinstance(v, str) for v in obj.values()):
            return obj
    return {LEGACY_FIELD: value}


def remember(fields: Mapping[str, str]) -> None:
    """Redact every secret field's value from answers, records and logs from now on."""
    for name, value in fields.items():
        if name not in PUBLIC_CREDENTIAL_FIELDS:
            KNOWN_SECRETS.add(value)
