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
Each command is served by one replica (a queue group). Cancel reaches the calls on every replica:
the replica taking it asks them all and answers with every id cancelled (``cancel_command``)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from turnout.auth.jwt_tokens import JwtCodec
from turnout.auth.principal import Principal
from turnout.catalog.model_service import ModelService
from turnout.catalog.schemas import ModelCreate
from turnout.errors import Forbidden, TurnoutError
from turnout.events import command_io
from turnout.events.cancel_command import Cancel, CancelCommand, CancelNamed
from turnout.feedback.performance import PerformanceService, ResetIn

log = structlog.get_logger(__name__)


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
        self._cancelling = CancelCommand(jwt, cancel, cancel_named)
        self._subs: list[Subscription] = []

    @property
    def serving(self) -> bool:
        """Subscribed, and the server has the subscriptions: a command sent now is served."""
        return bool(self._subs)

    async def start(self, nc: Client) -> None:
        handlers: dict[str, Callable[[Principal, bytes], Awaitable[dict[str, Any]]]] = {
            "model.register": self._register,
            "model.performance.reset": self._reset,
        }
        subs = [
            await nc.subscribe(
                command_io.PREFIX + name, queue=command_io.QUEUE, cb=self._serving(name, handler)
            )
            for name, handler in handlers.items()
        ]
        subs += await self._cancelling.subscribe(nc)
        await nc.flush()
        self._subs = subs

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = []
        self._cancelling.stop()

    def _serving(
        self, name: str, handler: Callable[[Principal, bytes], Awaitable[dict[str, Any]]]
    ) -> Callable[[Msg], Awaitable[None]]:
        async def serve(msg: Msg) -> None:
            try:
                reply = command_io.ok_reply(
                    name, await handler(command_io.principal_of(msg, self._jwt), msg.data)
                )
            except TurnoutError as exc:
                reply = command_io.error_reply(name, exc)
            except Exception as exc:
                log.exception("command.failed", command=name)
                reply = command_io.failed_reply(name, exc)
            log.info(
                "command", command=name, ok=reply["ok"], code=None if reply["ok"] else reply["error"]["code"]
            )
            await msg.respond(orjson.dumps(reply))

        return serve

    async def _register(self, principal: Principal, data: bytes) -> dict[str, Any]:
        if not principal.has_any("platform_admin"):
            raise Forbidden("requires role platform_admin")
        created = await self._models.create(command_io.parse_body(data, ModelCreate))
        return created.model_dump(mode="json")

    async def _reset(self, principal: Principal, data: bytes) -> dict[str, Any]:
        if not principal.has_any("platform_admin"):
            raise Forbidden("requires role platform_admin")
        return await self._performance.reset(command_io.parse_body(data, ResetIn), principal)
