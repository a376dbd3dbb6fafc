"""Call records found by the id their caller gave them (``X-Client-Request-Id``, kept in the
record's JSON metadata), on SQLite and PostgreSQL, within the caller's tenant."""

from __future__ import annotations

import uuid

from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.records.queries import MessageFilter
from turnout.store.messages import Message
from turnout.store.models import utcnow


def _named(tenant: str, name: str | None) -> Message:
    meta = {} if name is None else {"client_request_id": name, "task_id": "t1"}
    return Message(
        id=str(uuid.uuid4()), tenant_id=tenant, agent_id=None, model="p/m", dialect="openai",
        endpoint="chat", status="cancelled", http_status=409, created_at=utcnow(), metadata_=meta,
    )  # fmt: skip


async def test_records_are_found_by_the_name_their_caller_gave_them(container: Container) -> None:
    rows = [
        _named("acme", "job-42"),
        _named("acme", "job-4"),
        _named("acme", None),
        _named("globex", "job-42"),
    ]
    async with container.sessions.begin() as session:
        session.add_all(rows)
    ann = Principal("ann", "acme", frozenset({"tenant_admin"}))
    page = await container.messages.list(MessageFilter(client_request_id="job-42"), ann)
    assert [m.id for m in page.items] == [rows[0].id], "its own tenant's, that name only"
    root = Principal("root", "platform", frozenset({"platform_admin"}))
    every = await container.messages.list(MessageFilter(client_request_id="job-42"), root)
    assert {m.id for m in every.items} == {rows[0].id, rows[3].id}
    detail = await container.messages.get(rows[1].id, ann)
    assert detail.client_request_id == "job-4" and detail.task_id == "t1"
