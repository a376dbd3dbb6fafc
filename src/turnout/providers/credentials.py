"""A provider's credential: the named secret fields its spec asks for (``api_key`` for every
provider today; AWS keys or a Google service account for Bedrock or Vertex tomorrow).

Built once per secret read (the gateway caches it), so the per-request cost is an attribute read.
``secrets`` holds every value, for scrubbing: an upstream may echo any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from turnout.redaction import PUBLIC_CREDENTIAL_FIELDS


@dataclass(frozen=True, slots=True)
class Credentials:
    """The secret fields of one provider; the values never appear in its repr."""

    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    #: the ``api_key`` field (None when absent or empty), read on every request
    api_key: str | None = field(init=False, repr=False, compare=False)
    #: every non-empty secret value (not a ``region``), for scrubbing what a provider says
    secrets: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = MappingProxyType(dict(self.fields))
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "api_key", fields.get("api_key") or None)
        secret = (v for k, v in fields.items() if v and k not in PUBLIC_CREDENTIAL_FIELDS)
        object.__setattr__(self, "secrets", tuple(secret))

    @classmethod
    def of(cls, value: Credentials | Mapping[str, str] | str | None) -> Credentials:
        """``value`` as Credentials: a mapping of fields, or a bare string meaning an API key."""
        if isinstance(value, Credentials):
            return value
        if value is None:
            return NO_CREDENTIALS
        if isinstance(value, str):
            return cls({"api_key": value}) if value else NO_CREDENTIALS
        return cls(value)

    def get(self, name: str) -> str | None:
        """A field's value, or None."""
        return self.fields.get(name) or None

    def __bool__(self) -> bool:
        return bool(self.secrets)


NO_CREDENTIALS = Credentials()
