"""Deployment groups, administered: one name for several deployments of a model (the same model
at OpenAI and at Azure, two vLLM servers), and the strategy that picks a member per request.

Groups are platform-wide, like the catalog and its aliases: a group's name is one more name a
client may send as ``model``, so it may not be a catalog id or an admin-set alias (a provider's own
model id, such as ``gpt-4o-mini``, is fine: the group wins, which is the point of naming a group
after its model). Writes go to the database, then into this replica's snapshot and, by the change
bus, the others'."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.catalog.schemas import Alias, StrictBody
from turnout.domain.groups import Strategy, load_groups, snapshot_parts
from turnout.domain.snapshot import SnapshotStore
from turnout.errors import Conflict, InvalidRequest, NotFound
from turnout.store.groups import DeploymentGroup
from turnout.store.models import Model, utcnow

MAX_MEMBERS = 100


class MemberIn(StrictBody):
    model_id: str = Field(min_length=1, max_length=512, description="a catalog id, e.g. `oai/gpt-4o-mini`")
    weight: float = Field(default=1.0, gt=0, le=1_000_000, description="share under `weighted`; tie-break")


Members = list[MemberIn]


class GroupCreate(StrictBody):
    name: Alias
    strategy: Strategy = "weighted"
    members: Members = Field(min_length=1, max_length=MAX_MEMBERS)
    description: str | None = Field(default=None, max_length=500)


class GroupUpdate(StrictBody):
    strategy: Strategy | None = None
    members: Members | None = Field(default=None, min_length=1, max_length=MAX_MEMBERS)
    description: str | None = Field(default=None, max_length=500)


class MemberOut(BaseModel):
    model_id: str
    weight: float


class GroupOut(BaseModel):
    name: str
    strategy: Strategy
    members: list[MemberOut]
    description: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class GroupList(BaseModel):
    items: list[GroupOut]
    total: int


class GroupService:
    """Create, read, change and delete deployment groups (platform admins)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], snapshots: SnapshotStore) -> None:
        self._sessions = sessions
        self._snapshots = snapshots

    async def list(self) -> GroupList:
        async with self._sessions() as session:
            rows = (await session.scalars(select(DeploymentGroup).order_by(DeploymentGroup.name))).all()
        return GroupList(items=[_out(row) for row in rows], total=len(rows))

    async def get(self, name: str) -> GroupOut:
        async with self._sessions() as session:
            return _out(await _load(session, name))

    async def create(self, body: GroupCreate, principal: Principal) -> GroupOut:
        async with self._sessions.begin() as session:
            if await session.get(DeploymentGroup, body.name) is not None:
                raise Conflict(f"group '{body.name}' already exists", param="name", code="duplicate_id")
            taken = await session.scalar(
                select(Model.id).where(or_(Model.id == body.name, Model.alias == body.name)).limit(1)
            )
            if taken is not None:
                raise Conflict(
                    f"name '{body.name}' is already used by model '{taken}'",
                    param="name",
                    code="duplicate_name",
                )
            await _check_members(session, body.members)
            row = DeploymentGroup(
                name=body.name,
                strategy=body.strategy,
                members=_members(body.members),
                description=body.description,
                created_by=principal.subject,
            )
            session.add(row)
        await self._publish()
        return _out(row)

    async def update(self, name: str, body: GroupUpdate) -> GroupOut:
        changes = body.model_fields_set
        for field in ("strategy", "members"):
            if field in changes and getattr(body, field) is None:
                raise InvalidRequest(f"{field} cannot be null", param=field)
        async with self._sessions.begin() as session:
            row = await _load(session, name)
            if body.members is not None:
                await _check_members(session, body.members)
                row.members = _members(body.members)
            if body.strategy is not None:
                row.strategy = body.strategy
            if "description" in changes:
                row.description = body.description
            row.updated_at = utcnow()
        await self._publish()
        return _out(row)

    async def delete(self, name: str) -> None:
        async with self._sessions.begin() as session:
            await session.delete(await _load(session, name))
        await self._publish()

    async def _publish(self) -> None:
        """This replica's snapshot gets the groups now; the others rebuild (``SnapshotStore.put``)."""
        async with self._sessions() as session:
            groups = await load_groups(session)
        self._snapshots.put(**snapshot_parts(groups))


async def _load(session: AsyncSession, name: str) -> DeploymentGroup:
    row = await session.get(DeploymentGroup, name)
    if row is None:
        raise NotFound(f"deployment group '{name}' not found", param="name")
    return row


async def _check_members(session: AsyncSession, members: Members) -> None:
    """Each member a catalog model, listed once, all of one model type (chat or embedding)."""
    ids = [m.model_id for m in members]
    query = select(Model.id, Model.model_type).where(Model.id.in_(ids))
    found = {model_id: model_type for model_id, model_type in (await session.execute(query)).all()}
    seen: set[str] = set()
    for index, model_id in enumerate(ids):
        param = f"members.{index}.model_id"
        if model_id not in found:
            raise InvalidRequest(
                f"model '{model_id}' is not in the catalog", param=param, code="model_not_found"
            )
        if model_id in seen:
            raise InvalidRequest(f"model '{model_id}' is listed twice", param=param, code="duplicate_member")
        seen.add(model_id)
    if len(set(found.values())) > 1:
        raise InvalidRequest(
            "members must all be chat models or all embedding models",
            param="members",
            code="mixed_model_types",
        )


def _members(members: Members) -> list[dict[str, object]]:
    return [{"model_id": m.model_id, "weight": m.weight} for m in members]


def _out(row: DeploymentGroup) -> GroupOut:
    return GroupOut(
        name=row.name,
        strategy=row.strategy,
        members=[MemberOut(model_id=m["model_id"], weight=m["weight"]) for m in row.members],
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
