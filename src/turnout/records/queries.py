"""Reading call records back: the list an admin filters and pages through, and one call in full.

Tenant admins see their tenant's calls only; platform admins see every tenant's. Pages are keyset
pages over ``(created_at, id)``, newest first, so page 1,000 costs what page 1 does (an offset would
scan every row before it).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.errors import Forbidden, InvalidRequest, NotFound
from turnout.ids import ordered_id_time
from turnout.jsontypes import Usd
from turnout.store.messages import Message

MAX_LIMIT = 200
Status = Literal["ok", "error", "cancelled"]


class MessageFilter(BaseModel):
    """What ``GET /api/v2/messages`` may filter on (all optional; all must hold)."""

    tenant_id: str | None = Field(default=None, max_length=64, description="platform admins only")
    agent_id: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=512)
    provider: str | None = Field(default=None, max_length=50)
    status: Status | None = None
    task_type: str | None = Field(default=None, max_length=50)
    client_request_id: str | None = Field(
        default=None, max_length=512, description="the id the caller gave the call (X-Client-Request-Id)"
    )
    since: datetime | None = Field(default=None, description="created at or after (ISO 8601)")
    until: datetime | None = Field(default=None, description="created before (ISO 8601)")


class MessageSummary(BaseModel):
    """One call in a list."""

    id: str
    created_at: datetime
    tenant_id: str
    agent_id: str | None
    model: str | None
    provider: str | None
    endpoint: str
    dialect: str
    stream: bool
    status: str
    http_status: int
    task_type: str | None
    latency_ms: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None = Field(default=None, description="prompt tokens read from the prompt cache")
    cache_write_tokens: int | None = Field(default=None, description="prompt tokens written to the cache")
    reasoning_tokens: int | None = Field(default=None, description="completion tokens spent reasoning")
    cost_usd: Usd | None = Field(description="exact, 8 decimals (a string)")
    cost_estimated: bool = Field(default=False, description="usage estimated, or a price stood in for")
    api_key_id: str | None = Field(default=None, description="the agent API key used (null: a JWT)")
    policy: str | None = Field(default=None, description="the routing policy that chose the model")
    attempts: int
    fallback_used: bool
    cache_hit: bool = Field(default=False, description="answered from the response cache (cost 0)")
    rating: float | None


class MessageDetail(MessageSummary):
    """One call in full: how it was routed, tried, answered and rated."""

    conversation_id: str | None
    user_id: str | None
    ttft_ms: int | None
    finish_reason: str | None
    error: str | None
    tools_used: list[str]
    feedback_type: str | None
    feedback_at: datetime | None
    task_id: str | None
    client_request_id: str | None = Field(
        default=None, description="the id the caller gave the call (X-Client-Request-Id)"
    )
    decision: dict[str, Any] | None = Field(description="the routing decision: task, candidates, scores")
    prompt: str | None = Field(description="kept only with TURNOUT_STORE_MESSAGE_TEXT=true")
    content: str | None = Field(description="kept only with TURNOUT_STORE_MESSAGE_TEXT=true")


class MessagePage(BaseModel):
    items: list[MessageSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page")


# a lookup of a call made under STORE_WAIT_S ago that misses reads again every STORE_POLL_S
STORE_WAIT_S = 3.0
STORE_POLL_S = 0.1


class MessageQueries:
    """Call records for the control plane."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], flush: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """``flush``: stores the records this process still holds (the record writer's), awaited
        when a lookup by id misses, so a call's record is found right after its answer."""
        self._sessions = sessions
        self._flush = flush

    async def list(
        self, flt: MessageFilter, principal: Principal, *, limit: int = 50, cursor: str | None = None
    ) -> MessagePage:
        """Calls matching ``flt`` in the caller's scope, newest first."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}", param="limit")
        query = _filtered(select(Message), flt, _tenant_scope(flt, principal))
        if cursor is not None:
            created, message_id = _decode_cursor(cursor)
            older = and_(Message.created_at == created, Message.id < message_id)
            query = query.where(or_(Message.created_at < created, older))
        query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        items = [MessageSummary.model_validate(row, from_attributes=True) for row in rows]
        return MessagePage(items=items, next_cursor=_encode_cursor(rows[-1]) if more and rows else None)

    async def get(self, message_id: str, principal: Principal) -> MessageDetail:
        """One call of the caller's scope; another tenant's answers 404, as if absent."""
        row = await self._row(message_id)
        if row is None and self._flush is not None:  # maybe answered here and not stored yet
            await self._flush()
            row = await self._row(message_id)
        if row is None:  # maybe answered by another replica, whose writer stores it within moments
            row = await self._fresh_row(message_id)
        if row is None or not (principal.has_any("platform_admin") or row.tenant_id == principal.tenant_id):
            raise NotFound(f"message '{message_id}' not found", param="message_id")
        meta = row.metadata_ or {}
        decision = meta.get("decision")
        return MessageDetail.model_validate(
            {
                **MessageSummary.model_validate(row, from_attributes=True).model_dump(),
                "conversation_id": row.conversation_id,
                "user_id": row.user_id,
                "ttft_ms": row.ttft_ms,
                "finish_reason": row.finish_reason,
                "error": row.error,
                "tools_used": list(row.tools_used or []),
                "feedback_type": row.feedback_type,
                "feedback_at": row.feedback_at,
                "task_id": meta.get("task_id"),
                "client_request_id": meta.get("client_request_id"),
                "decision": decision if isinstance(decision, dict) else None,
                "prompt": row.prompt,
                "content": row.content,
            }
        )

    async def _fresh_row(self, message_id: str) -> Message | None:
        """The record of a call made moments ago (its id says when: ``ids.ordered_id_time``),
        read again until it is ``STORE_WAIT_S`` old: another replica's record writer stores it
        within its batch interval (0.2 s by default), and a client behind a load balancer asks
        whichever replica. An id of no such call, or an older one, is not waited for."""
        made = ordered_id_time(message_id)
        if made is None:
            return None
        while time.time() - made < STORE_WAIT_S:
            await asyncio.sleep(STORE_POLL_S)
            row = await self._row(message_id)
            if row is not None:
                return row
        return None

    async def _row(self, message_id: str) -> Message | None:
        async with self._sessions() as session:
            return await session.get(Message, message_id)


def _tenant_scope(flt: MessageFilter, principal: Principal) -> str | None:
    """The tenant a query is limited to (None: every tenant, for platform admins)."""
    if principal.has_any("platform_admin"):
        return flt.tenant_id
    if flt.tenant_id is not None and flt.tenant_id != principal.tenant_id:
        raise Forbidden("only platform admins may read other tenants' calls", param="tenant_id")
    return principal.tenant_id


MessageSelect = Select[Any]


def _filtered(query: MessageSelect, flt: MessageFilter, tenant: str | None) -> MessageSelect:
    if tenant is not None:
        query = query.where(Message.tenant_id == tenant)
    for column, value in (
        (Message.agent_id, flt.agent_id),
        (Message.model, flt.model),
        (Message.provider, flt.provider),
        (Message.status, flt.status),
        (Message.task_type, flt.task_type),
    ):
        if value is not None:
            query = query.where(column == value)
    if flt.client_request_id is not None:
        query = query.where(Message.metadata_["client_request_id"].as_string() == flt.client_request_id)
    if flt.since is not None:
        query = query.where(Message.created_at >= _utc(flt.since))
    if flt.until is not None:
        query = query.where(Message.created_at < _utc(flt.until))
    return query


def _utc(value: datetime) -> datetime:
    """A bound in UTC; a time given without a zone is taken as UTC."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _encode_cursor(row: Message) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, message_id = raw.partition("|")
        if not message_id:
            raise ValueError("no id")
        return _utc(datetime.fromisoformat(created)), message_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("cursor is not one this API returned", param="cursor") from None
