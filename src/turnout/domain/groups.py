"""Deployment groups as the hot path reads them: one name for several catalog models (the same
model at two providers), each with a weight, and the strategy that orders them per request.

Groups are platform-wide, like the catalog whose models they name: an agent reaches a group's
members only where it may reach them by name (its enabled models, its capsule)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from turnout.store.groups import DeploymentGroup

Strategy = Literal["weighted", "least-busy", "lowest-latency"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True, slots=True)
class GroupMember:
    model_id: str  # a catalog id
    weight: float  # > 0; its share under ``weighted``, the tie-break of the others


@dataclass(frozen=True, slots=True)
class GroupEntry:
    name: str
    strategy: Strategy
    members: tuple[GroupMember, ...]
    description: str | None = None


def group_entry(row: DeploymentGroup) -> GroupEntry:
    """The snapshot's view of a stored group."""
    members = tuple(GroupMember(str(m["model_id"]), float(m.get("weight", 1.0))) for m in row.members)
    return GroupEntry(row.name, row.strategy, members, row.description)  # type: ignore[arg-type]


async def load_groups(session: AsyncSession) -> dict[str, GroupEntry]:
    """Every group, by name."""
    rows = (await session.scalars(select(DeploymentGroup))).all()
    return {row.name: group_entry(row) for row in rows}


def snapshot_parts(groups: Mapping[str, GroupEntry]) -> dict[str, Any]:
    """The snapshot fields groups fill: the groups by name, and every member's catalog id (the
    models whose health and load failover tracks)."""
    return {"groups": dict(groups), "group_members": member_ids(groups.values())}


def member_ids(groups: Iterable[GroupEntry]) -> frozenset[str]:
    return frozenset(m.model_id for group in groups for m in group.members)
