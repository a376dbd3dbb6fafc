"""``model.request.cancel`` across replicas. A call is held by the replica its client reached, and
calls sharing one ``client_request_id`` may sit on several, so one replica takes the command (the
queue group) and asks every replica, itself included, on ``INTERNAL``; it answers with what they
all cancelled.

Each replica verifies the forwarded bearer token itself: a principal passed in the message could
be forged by anyone on NATS, a token signed with the replicas' secret cannot. A replica answers
the fan-out within ``WINDOW_S``; by ``request_id`` the command is answered as soon as the replica
holding the call does (one replica holds it), by ``client_request_id`` once the window is over,
with the union of the ids cancelled. A replica slower than the window still cancels its calls, but
the reply does not list them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, cast

import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from turnout.auth.jwt_tokens import JwtCodec
from turnout.auth.principal import Principal
from turnout.domain.requests import CLIENT_ID_CHARS
from turnout.errors import Forbidden, NotFound, TurnoutError
from turnout.events.command_io import (
    PREFIX,
    QUEUE,
    authorization,
    error_reply,
    failed_reply,
    ok_reply,
    parse_body,
    principal_of,
)

log = structlog.get_logger(__name__)

NAME = "model.request.cancel"
INTERNAL = "turnout.internal.cancel"  # every replica, no queue group: each cancels its own calls
WINDOW_S = 0.25  # how long the replica taking the command waits for the others' answers


class CancelIn(BaseModel):
    """Which call to cancel: by Turnout's id, or by the id its caller gave it (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(default=None, min_length=1, max_length=64)
    client_request_id: str | None = None

    @field_validator("client_request_id")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and CLIENT_ID_CHARS.match(value) is None:  # no call could carry it
            raise ValueError("must be 1 to 512 printable ASCII characters, as X-Client-Request-Id is")
        return value

    @model_validator(mode="after")
    def _one(self) -> CancelIn:
        if (self.request_id is None) == (self.client_request_id is None):
            raise ValueError("give one of request_id and client_request_id")
        return self


Cancel = Callable[[str, Principal], bool | None]  # True: cancelled; False: not allowed; None: not here
CancelNamed = Callable[[str, Principal], list[str] | None]  # the message ids cancelled; None: none here


class CancelCommand:
    """Serves ``model.request.cancel`` (one replica per command) and the fan-out (every replica)."""

    def __init__(self, jwt: JwtCodec, cancel: Cancel, cancel_named: CancelNamed) -> None:
        self._jwt = jwt
        self._cancel = cancel
        self._cancel_named = cancel_named
        self._nc: Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def subscribe(self, nc: Client) -> list[Subscription]:
        self._nc = nc
        return [
            await nc.subscribe(PREFIX + NAME, queue=QUEUE, cb=self._take),
            await nc.subscribe(INTERNAL, cb=self._serve_here),
        ]

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _take(self, msg: Msg) -> None:
        # answered in a task of its own: a command waiting out the window holds up no other
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _authorised(self, msg: Msg) -> tuple[Principal, CancelIn]:
        principal = principal_of(msg, self._jwt)
        body: CancelIn = parse_body(msg.data, CancelIn)
        if not principal.has_any("tenant_admin", "platform_admin"):
            raise Forbidden("requires role tenant_admin or platform_admin")
        return principal, body

    async def _answer(self, msg: Msg) -> None:
        replicas = 0
        try:
            _, body = self._authorised(msg)  # refused here: no replica is asked
            replicas, cancelled = await self._everywhere(msg, body)
            reply = ok_reply(NAME, self._result(body, cancelled))
        except TurnoutError as exc:
            reply = error_reply(NAME, exc)
        except Exception as exc:
            log.exception("command.failed", command=NAME)
            reply = failed_reply(NAME, exc)
        code = None if reply["ok"] else reply["error"]["code"]
        log.info("command", command=NAME, ok=reply["ok"], code=code, replicas=replicas)
        with contextlib.suppress(Exception):
            await msg.respond(orjson.dumps(reply))

    async def _everywhere(self, msg: Msg, body: CancelIn) -> tuple[int, list[str]]:
        """Ask every replica to cancel; how many answered and the ids they cancelled (in the order
        they came)."""
        nc = self._nc
        assert nc is not None  # subscribed, so connected
        inbox = nc.new_inbox()
        answers = await nc.subscribe(inbox)
        replicas, refused = 0, False
        cancelled: list[str] = []
        try:  # the original token goes along: each replica verifies it, as this one did
            await nc.publish(INTERNAL, msg.data, reply=inbox, headers={"Authorization": authorization(msg)})
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WINDOW_S
            while (left := deadline - loop.time()) > 0:
                try:
                    answer = await answers.next_msg(timeout=left)
                except NatsTimeout:
                    break
                here = _here(answer.data)
                if here is None:
                    continue
                replicas += 1
                cancelled += [i for i in here[0] if i not in cancelled]
                refused = refused or here[1]
                if body.request_id is not None and (cancelled or refused):
                    break  # one replica holds the call (maybe another tenant's): no other has it
        finally:
            with contextlib.suppress(Exception):
                await answers.unsubscribe()
        return replicas, cancelled

    @staticmethod
    def _result(body: CancelIn, cancelled: list[str]) -> dict[str, Any]:
        """The reply's result; not_found when nothing was cancelled (another tenant's call is not
        found either: its id tells a tenant admin nothing)."""
        if body.request_id is not None:
            if body.request_id not in cancelled:
                raise NotFound(
                    f"no request with request_id '{body.request_id}' in flight", param="request_id"
                )
            return {"request_id": body.request_id, "status": "cancelled"}
        name = cast(str, body.client_request_id)  # one of the two
        if not cancelled:
            raise NotFound(f"no request with client_request_id '{name}' in flight", param="client_request_id")
        return {"client_request_id": name, "request_ids": cancelled, "status": "cancelled"}

    async def _serve_here(self, msg: Msg) -> None:
        """Cancel this replica's calls the fan-out names, for the token's principal."""
        try:
            principal, body = self._authorised(msg)
        except TurnoutError as exc:  # forged, or not sent by a replica: cancel nothing, answer nothing
            log.warning("command.fan_out_refused", command=NAME, code=exc.code)
            return
        if body.request_id is not None:
            done = self._cancel(body.request_id, principal)
            here = {"request_ids": [body.request_id] if done else [], "refused": done is False}
        else:
            here = {"request_ids": self._cancel_named(body.client_request_id or "", principal) or []}
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(orjson.dumps(here))


def _here(data: bytes) -> tuple[list[str], bool] | None:
    """A replica's answer to the fan-out (None: not one, as something else on the inbox may be)."""
    try:
        here = orjson.loads(data)
        ids, refused = here["request_ids"], bool(here.get("refused", False))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    return ids, refused
