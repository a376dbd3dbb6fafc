"""Commands over NATS request/reply, authorised like the API: ``turnout.commands.<command>`` with
a JSON body and the caller's bearer token (a JWT) in the ``Authorization`` header.

- ``model.register``: a custom model, the body and validation of ``POST /api/v2/admin/models``
  (platform admins);
- ``model.performance.reset``: forget a model's experience, as ``POST .../performance/reset``
  (platform admins);
- ``model.request.cancel``: ``{"request_id"}`` (Turnout's id of the call) or ``{"client_request_id"}``
  (the caller's own, sent as ``X-Client-Request-Id``: a call's id reaches its client only with the
  answer), cancels a call in flight (its upstream call too); the call is recorded ``cancelled`` and
  its client gets 409 ``request_cancelled``. Tenant and platform admins of the call's tenant.

Every reply is ``{"ok": true, "command", "result": {...}}`` or ``{"ok": false, "command", "error":
{"type", "code", "message", "param"}}``; a bad body gets an error reply and changes nothing.
Register and reset are served by one replica each (a queue group); cancel goes to every replica,
the one holding the call answers at once and the others answer ``not_found`` a moment later, so
the first reply the caller takes is the right one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from turnout.auth.jwt_tokens import JwtCodec
from turnout.auth.principal import Principal
from turnout.catalog.model_service import ModelService
from turnout.catalog.schemas import ModelCreate
from turnout.domain.requests import CLIENT_ID_CHARS
from turnout.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    TurnoutError,
    Unauthenticated,
    fields_message,
)
from turnout.feedback.performance import PerformanceService, ResetIn

log = structlog.get_logger(__name__)

PREFIX = "turnout.commands."
QUEUE = "turnout"
NOT_HERE_DELAY_S = 0.25  # a replica without the call answers not_found after the holder had its turn


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


def _error(exc: TurnoutError) -> dict[str, Any]:
    return {"type": exc.error_type, "code": exc.code, "message": exc.message, "param": exc.param}


def _invalid(exc: ValidationError) -> TurnoutError:
    """Every bad field of a command's body (an error about the whole body goes under ``body``), as
    the API's 400 names them for the same body."""
    message, param = fields_message(exc.errors(), whole="body")
    return InvalidRequest(message, param=param, code="invalid_value")


class CommandServer:
    """Serves the commands on a NATS connection (the events' own)."""

    def __init__(
        self,
        jwt: JwtCodec,
        models: ModelService,
        performance: PerformanceService,
        cancel: Cancel,
        cancel_named: CancelNamed,
    ) -> None:
        self._jwt = jwt
        self._models = models
        self._performance = performance
        self._cancel = cancel
        self._cancel_named = cancel_named
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, nc: Client) -> None:
        handlers: dict[str, Callable[[Principal, bytes], Awaitable[dict[str, Any]]]] = {
            "model.register": self._register,
            "model.performance.reset": self._reset,
        }
        for name, handler in handlers.items():
            self._subs.append(await nc.subscribe(PREFIX + name, queue=QUEUE, cb=self._serving(name, handler)))
        self._subs.append(await nc.subscribe(PREFIX + "model.request.cancel", cb=self._serve_cancel))

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = []
        for task in list(self._tasks):
            task.cancel()

    def _serving(
        self, name: str, handler: Callable[[Principal, bytes], Awaitable[dict[str, Any]]]
    ) -> Callable[[Msg], Awaitable[None]]:
        async def serve(msg: Msg) -> None:
            try:
                principal = self._principal(msg)
                reply: dict[str, Any] = {
                    "ok": True,
                    "command": name,
                    "result": await handler(principal, msg.data),
                }
            except TurnoutError as exc:
                reply = {"ok": False, "command": name, "error": _error(exc)}
            except Exception as exc:  # never leave a caller waiting: say it failed
                log.exception("command.failed", command=name)
                reply = {
                    "ok": False,
                    "command": name,
                    "error": {
                        "type": "api_error",
                        "code": "internal_error",
                        "message": type(exc).__name__,
                        "param": None,
                    },
                }
            log.info(
                "command", command=name, ok=reply["ok"], code=None if reply["ok"] else reply["error"]["code"]
            )
            await msg.respond(orjson.dumps(reply))

        return serve

    def _principal(self, msg: Msg) -> Principal:
        # header names are case-insensitive, as in HTTP: "authorization" is the same header
        header = next((v for k, v in (msg.headers or {}).items() if k.lower() == "authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing bearer token (the Authorization header)", code="missing_token")
        return self._jwt.verify(token.strip())

    @staticmethod
    def _body(data: bytes, schema: type[BaseModel]) -> Any:
        try:
            return schema.model_validate_json(data or b"{}")
        except ValidationError as exc:
            if any(e.get("type") == "json_invalid" for e in exc.errors()):
                raise InvalidRequest("the command's body is not valid JSON", code="invalid_json") from None
            raise _invalid(exc) from None

    async def _register(self, principal: Principal, data: bytes) -> dict[str, Any]:
        if not principal.has_any("platform_admin"):
            raise Forbidden("requires role platform_admin")
        body = self._body(data, ModelCreate)
        created = await self._models.create(body)
        return created.model_dump(mode="json")

    async def _reset(self, principal: Principal, data: bytes) -> dict[str, Any]:
        if not principal.has_any("platform_admin"):
            raise Forbidden("requires role platform_admin")
        return await self._performance.reset(self._body(data, ResetIn), principal)

    async def _serve_cancel(self, msg: Msg) -> None:
        name = "model.request.cancel"
        try:
            principal = self._principal(msg)
            body: CancelIn = self._body(msg.data, CancelIn)
            if not principal.has_any("tenant_admin", "platform_admin"):
                raise Forbidden("requires role tenant_admin or platform_admin")
            done: (
                bool | list[str] | None
            )  # cancelled (the ids, by name); False: another tenant's; None: not here
            if body.request_id is not None:
                field, value = "request_id", body.request_id
                done = self._cancel(value, principal)
                result: dict[str, Any] = {"request_id": value, "status": "cancelled"}
            else:
                field, value = "client_request_id", cast(str, body.client_request_id)  # one of the two
                done = self._cancel_named(value, principal)
                result = {"client_request_id": value, "request_ids": done, "status": "cancelled"}
            if done is None:  # not in flight here: let the replica holding it answer first
                await asyncio.sleep(NOT_HERE_DELAY_S)
            if not done:  # not here, or another tenant's
                raise NotFound(f"no request with {field} '{value}' in flight", param=field)
            reply: dict[str, Any] = {"ok": True, "command": name, "result": result}
        except TurnoutError as exc:
            reply = {"ok": False, "command": name, "error": _error(exc)}
        log.info("command", command=name, ok=reply["ok"])
        with contextlib.suppress(Exception):
            await msg.respond(orjson.dumps(reply))
