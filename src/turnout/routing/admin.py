"""Control-plane operations on routing: policies, the task -> policy map, task detection maps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.domain.policies import DEFAULT_TASK_POLICIES, PolicyBody, PolicyIn, PolicyOut, view_of
from turnout.domain.snapshot import TASK_MAPS_KEY, TASK_POLICIES_KEY, SnapshotStore
from turnout.domain.task_maps import DEFAULT_MAPS, TaskMaps
from turnout.errors import Conflict, InvalidRequest, NotFound
from turnout.store.routing import RoutingPolicy, SettingEntry


class RoutingAdmin:
    """Writes go to the database first, then into this replica's snapshot."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        snapshots: SnapshotStore,
        default_tradeoff: float,  # the router's, for policies that set none and have no name default
    ) -> None:
        self._sessions = sessions
        self._snapshots = snapshots
        self._default_tradeoff = default_tradeoff

    async def list_policies(self) -> list[PolicyOut]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(RoutingPolicy).order_by(RoutingPolicy.name))).all()
        return [self._out(p) for p in rows]

    async def get_policy(self, name: str) -> PolicyOut:
        async with self._sessions() as session:
            return self._out(await _load(session, name))

    async def create_policy(self, body: PolicyIn) -> PolicyOut:
        async with self._sessions.begin() as session:
            if await session.get(RoutingPolicy, body.name) is not None:
                raise Conflict(f"policy '{body.name}' already exists", param="name", code="duplicate_id")
            row = RoutingPolicy(
                name=body.name, description=body.description, config=_config(body), is_active=body.is_active
            )
            session.add(row)
        await self._publish_policies()
        return self._out(row)

    async def replace_policy(self, name: str, body: PolicyBody) -> PolicyOut:
        async with self._sessions.begin() as session:
            row = await _load(session, name)
            row.description, row.config, row.is_active = body.description, _config(body), body.is_active
        await self._publish_policies()
        return self._out(row)

    def _out(self, row: RoutingPolicy) -> PolicyOut:
        tradeoff = view_of(row.name, row.config).cost_tradeoff
        return PolicyOut.model_validate(
            {
                **row.config,
                "name": row.name,
                "description": row.description,
                "is_active": row.is_active,
                "effective_cost_tradeoff": self._default_tradeoff if tradeoff is None else tradeoff,
            }
        )

    async def delete_policy(self, name: str) -> None:
        """Delete a policy no task maps to (a mapped one answers 409 naming the tasks: deleting it
        left the map pointing at nothing, and those tasks silently routed under the default)."""
        mapped = sorted(
            task for task, policy in self._snapshots.current.task_policies.items() if policy == name
        )
        if mapped:
            raise Conflict(
                f"policy '{name}' is what task(s) {', '.join(mapped)} route under: map them to another "
                "policy first (PUT /api/v2/routing/task-policies)",
                param="name",
            )
        async with self._sessions.begin() as session:
            row = await _load(session, name)
            await session.delete(row)
        await self._publish_policies()

    async def task_policies(self) -> dict[str, str]:
        return dict(self._snapshots.current.task_policies)

    async def set_task_policies(self, mapping: dict[str, str], principal: Principal) -> dict[str, str]:
        known = {p.name for p in await self.list_policies()}
        unknown = sorted((task, v) for task, v in mapping.items() if v not in known)
        if unknown:
            names = ", ".join(sorted({v for _, v in unknown}))
            raise InvalidRequest(f"unknown policy name(s): {names}", param=f"mapping.{unknown[0][0]}")
        await self._put_setting(TASK_POLICIES_KEY, mapping, principal)
        self._snapshots.put(task_policies=dict(mapping))
        return mapping

    def task_maps(self) -> dict[str, Any]:
        maps = self._snapshots.current.task_maps or DEFAULT_MAPS
        return maps.to_dict()

    async def set_task_maps(self, raw: dict[str, Any], principal: Principal) -> dict[str, Any]:
        try:
            maps = TaskMaps.from_dict(raw)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="task_maps") from None
        await self._put_setting(TASK_MAPS_KEY, maps.to_dict(), principal)
        self._snapshots.put(task_maps=maps)
        return maps.to_dict()

    async def reset_task_policies(self, principal: Principal) -> dict[str, str]:
        return await self.set_task_policies(dict(DEFAULT_TASK_POLICIES), principal)

    async def _put_setting(self, key: str, value: dict[str, Any], principal: Principal) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(SettingEntry, key)
            if row is None:
                session.add(SettingEntry(key=key, value=value, updated_by=principal.subject))
            else:
                row.value, row.updated_by = value, principal.subject

    async def _publish_policies(self) -> None:
        async with self._sessions() as session:
            rows = (await session.scalars(select(RoutingPolicy))).all()
        self._snapshots.put(policies={p.name: view_of(p.name, p.config) for p in rows if p.is_active})


async def _load(session: AsyncSession, name: str) -> RoutingPolicy:
    row = await session.get(RoutingPolicy, name)
    if row is None:
        raise NotFound(f"policy '{name}' not found", param="name")
    return row


def _config(body: PolicyBody) -> dict[str, Any]:
    return body.model_dump(exclude={"name", "description", "is_active"}, mode="json")
