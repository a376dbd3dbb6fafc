"""Who is calling: the result of authentication, passed to every service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ROLES: Final = ("platform_admin", "tenant_admin", "user", "agent")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    subject: str
    tenant_id: str
    roles: frozenset[str]
    agent_id: str | None = None
    key_id: str | None = None  # the agent API key it authenticated with (None: a JWT)

    def has_any(self, *roles: str) -> bool:
        """True if the caller holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)
