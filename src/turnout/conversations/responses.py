"""Stored Responses API answers: saved after the call, read back for ``previous_response_id`` chains,
``GET``/``DELETE /v1/responses/{id}`` and their input items.

Every read and write is scoped to the caller's tenant, and to its agent when the caller is one (an
agent's conversations are its own): another tenant's id reads as not found, never as forbidden, so
ids cannot be probed. Each row keeps the whole conversation its turn ended (its Responses items), so
continuing a chain is one primary-key read however long the chain is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.errors import NotFound
from turnout.store.responses import StoredResponse

MAX_ITEMS_PAGE = 100


class PreviousNotFound(NotFound):
    """The ``previous_response_id`` names no stored response of this caller."""

    code = "previous_response_not_found"


class InputItemPage(BaseModel):
    object: str = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ResponseStore:
    """The ``responses`` table, tenant- and agent-scoped."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def _mine(self, principal: Principal, response_id: str) -> Any:
        query = select(StoredResponse).where(
            StoredResponse.id == response_id, StoredResponse.tenant_id == principal.tenant_id
        )
        if principal.agent_id is not None:
            query = query.where(StoredResponse.agent_id == principal.agent_id)
        return query

    async def _load(self, principal: Principal, response_id: str) -> StoredResponse | None:
        async with self._sessions() as session:
            return (await session.execute(self._mine(principal, response_id))).scalar_one_or_none()

    async def history(self, principal: Principal, response_id: str) -> list[dict[str, Any]]:
        """The conversation ``response_id`` ended, to continue; 404 when it is not the caller's."""
        row = await self._load(principal, response_id)
        if row is None:
            raise PreviousNotFound(
                f"Previous response with id '{response_id}' not found.", param="previous_response_id"
            )
        return list(row.conversation)

    async def save(
        self,
        principal: Principal,
        response: dict[str, Any],
        message_id: str,
        input_items: list[dict[str, Any]],
        conversation: list[dict[str, Any]],
    ) -> None:
        """Keep a finished response (awaited before the client gets it: a follow-up may name it)."""
        row = StoredResponse(
            id=response["id"],
            tenant_id=principal.tenant_id,
            agent_id=principal.agent_id,
            message_id=message_id,
            previous_response_id=response.get("previous_response_id"),
            response=response,
            input_items=input_items,
            conversation=conversation,
        )
        async with self._sessions() as session, session.begin():
            session.add(row)

    async def get(self, principal: Principal, response_id: str) -> dict[str, Any]:
        """The response object as the client first got it; 404 when it is not the caller's."""
        row = await self._load(principal, response_id)
        if row is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return dict(row.response)

    async def delete(self, principal: Principal, response_id: str) -> None:
        """Forget a response (its record stays); 404 when it is not the caller's."""
        row = await self._load(principal, response_id)
        if row is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        async with self._sessions() as session, session.begin():
            await session.execute(delete(StoredResponse).where(StoredResponse.id == row.id))

    async def input_items(
        self, principal: Principal, response_id: str, *, limit: int, after: str | None, order: str
    ) -> InputItemPage:
        """A page of the input items the response was given (``order`` asc or desc)."""
        row = await self._load(principal, response_id)
        if row is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        items = list(row.input_items)
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [item.get("id") for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        return InputItemPage(
            data=page,
            first_id=page[0].get("id") if page else None,
            last_id=page[-1].get("id") if page else None,
            has_more=len(items) > limit,
        )
