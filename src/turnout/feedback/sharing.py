"""A tenant's choice to pool its ratings with the other tenants that chose so (off by default).

Experience is per tenant: a tenant that does not share neither sees nor feeds anyone's ratings but
its own (and the platform's priors). Tenants that opt in all see the pooled ratings of all of them.
The choice is a setting row per tenant, so the database holds it and every replica's snapshot
(``Snapshot.shared_experience``) carries it to the router's experience store.
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.domain.snapshot import SHARING_KEY_PREFIX, SnapshotStore
from turnout.store.dml import conflict_insert
from turnout.store.models import utcnow
from turnout.store.routing import SettingEntry


class SharingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shared: bool


class SharingOut(BaseModel):
    tenant_id: str
    shared: bool


class ExperienceSharing:
    """Reads and sets the caller's tenant's sharing choice; a write takes effect here at once."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], snapshots: SnapshotStore) -> None:
        self._sessions = sessions
        self._snapshots = snapshots

    async def get(self, principal: Principal) -> SharingOut:
        async with self._sessions() as session:
            row = await session.get(SettingEntry, SHARING_KEY_PREFIX + principal.tenant_id)
        return SharingOut(
            tenant_id=principal.tenant_id, shared=row is not None and row.value.get("shared") is True
        )

    async def set(self, principal: Principal, body: SharingIn) -> SharingOut:
        tenant = principal.tenant_id
        values = {
            "key": SHARING_KEY_PREFIX + tenant,
            "value": {"shared": body.shared},
            "updated_by": principal.subject,
            "updated_at": utcnow(),
        }
        async with self._sessions.begin() as session:
            stmt = conflict_insert(cast(Table, SettingEntry.__table__), session.get_bind().dialect.name)
            assert isinstance(stmt, PgInsert | SqliteInsert), "settings upserts need ON CONFLICT"
            await session.execute(
                stmt.values(values).on_conflict_do_update(index_elements=["key"], set_=values)
            )
        current = self._snapshots.current
        shared = current.shared_experience | {tenant} if body.shared else current.shared_experience - {tenant}
        self._snapshots.put(shared_experience=frozenset(shared))
        return SharingOut(tenant_id=tenant, shared=body.shared)
