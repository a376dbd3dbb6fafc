"""Performance resets as stored facts: "forget the ratings of this model (for these tasks, this
tenant's agent) given before this moment". Stored with the settings (``performance.resets``), so
that a restart's replay and every other replica forget the same ratings the resetting replica did;
the performance report leaves out the same records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from turnout.store.routing import SettingEntry

RESETS_KEY = "performance.resets"
KEPT = 500  # the newest resets kept (older ones were applied long ago, on every replica)

# (tenant, agent, task, model) of a rating
Scope = tuple[str, str | None, str, str]


@dataclass(frozen=True, slots=True)
class Reset:
    model_id: str
    task_types: tuple[str, ...]  # empty: every task
    tenant_id: str | None  # with agent_id: that tenant's agent; without: every tenant's
    agent_id: str | None  # None: every agent, every level
    at: datetime

    def reaches(self, scope: Scope) -> bool:
        """Does this reset reach ratings of ``scope`` (whenever they were given)?"""
        tenant, agent, task, model = scope
        return (
            model == self.model_id
            and (not self.task_types or task in self.task_types)
            and (self.agent_id is None or (agent == self.agent_id and self.tenant_id in (None, tenant)))
        )

    def covers(self, scope: Scope, rated_at: float) -> bool:
        """Is a rating of ``scope`` given at ``rated_at`` (Unix seconds) one this reset forgot?"""
        return rated_at < self.at.timestamp() and self.reaches(scope)

    def as_json(self, by: str) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "task_types": list(self.task_types),
            "tenant_id": self.tenant_id,
            "agent_id": self.agent_id,
            "at": self.at.isoformat(),
            "by": by,
        }

    @classmethod
    def of_json(cls, entry: dict[str, Any]) -> Reset:
        """A stored entry (those of older versions have no tenant or agent: they were global)."""
        return cls(
            str(entry["model_id"]),
            tuple(entry.get("task_types") or ()),
            entry.get("tenant_id"),
            entry.get("agent_id"),
            datetime.fromisoformat(entry["at"]),
        )


async def stored_resets(session: AsyncSession) -> tuple[datetime | None, list[Reset]]:
    """The stored resets, oldest first, and when they last changed (None: there are none)."""
    row = await session.get(SettingEntry, RESETS_KEY)
    if row is None:
        return None, []
    return row.updated_at, [Reset.of_json(entry) for entry in row.value.get("resets", [])]


async def store_reset(session: AsyncSession, reset: Reset, by: str) -> None:
    """Add ``reset`` to the stored ones (in the caller's transaction)."""
    row = await session.get(SettingEntry, RESETS_KEY)
    entry = reset.as_json(by)
    if row is None:
        session.add(SettingEntry(key=RESETS_KEY, value={"resets": [entry]}, updated_by=by))
    else:
        row.value = {"resets": [*row.value.get("resets", []), entry][-KEPT:]}
        row.updated_by = by
