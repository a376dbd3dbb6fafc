"""The lean `/v1/*` and `/api/models/*` handlers (Starlette, orjson): no FastAPI on the hot path."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.api.answers import render
from turnout.api.auth import authenticate
from turnout.api.deps import container_of
from turnout.api.dialects import ANTHROPIC, OPENAI, Dialect
from turnout.api.native import NATIVE, native_chat_body, native_embeddings_body
from turnout.api.parse import decode_json, parse_chat, parse_embeddings
from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.errors import InvalidRequest, TurnoutError
from turnout.feedback.service import FeedbackIn
from turnout.gateway.results import Answer, Failed, Streamed

Handler = Callable[[Request], Awaitable[Response]]
Result = Answer | Streamed | Failed


WATCH_AFTER_S = 0.05  # answers faster than this never start a disconnect watcher


class _DisconnectWatch:
    """Cancels ``task`` (and so its upstream call) when the client goes away; started lazily."""

    __slots__ = ("gone", "request", "task", "watcher")

    def __init__(self, request: Request, task: asyncio.Task[Any]) -> None:
        self.request, self.task = request, task
        self.gone = False
        self.watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self.request.receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self.task.cancel()


Run = Callable[[Container, Principal, dict[str, Any]], tuple[Awaitable[Result], bool]]


def _endpoint(dialect: Dialect, run: Run) -> Handler:
    """A data-plane handler: authenticate, parse, then await the gateway in this task and render its
    result in ``dialect``. If that takes over ``WATCH_AFTER_S``, a watcher cancels it (and the
    upstream call) when the client leaves; fast answers never start the watcher task (its start is an
    entry in a ``TimeoutLane``, not a timer handle). ``run`` parses synchronously and hands back the
    gateway's awaitable and whether a stream asked for usage: no wrapper coroutine, because every
    resume of the request passes through each awaiting frame, so wrappers cost on every upstream read."""

    async def handler(request: Request) -> Response:
        container = container_of(request)
        try:
            principal = authenticate(request, container)
            body = decode_json(await request.body())
            work, include_usage = run(container, principal, body)  # parsing errors raise here
        except TurnoutError as exc:
            return dialect.error_response(exc)
        current = asyncio.current_task()
        assert current is not None
        watch = _DisconnectWatch(request, current)  # after the body: the watcher reads receive()
        lane = container.timeouts.lane(WATCH_AFTER_S)
        lane.add(watch, watch.start)
        try:
            return render(dialect, await work, include_usage)
        except TurnoutError as exc:
            return dialect.error_response(exc)
        except asyncio.CancelledError:
            if not watch.gone:
                raise
            current.uncancel()
            return Response(status_code=499)
        finally:
            lane.discard(watch)
            if watch.watcher is not None:
                watch.watcher.cancel()

    return handler


def _openai_chat(c: Container, p: Principal, body: dict[str, Any]) -> tuple[Awaitable[Result], bool]:
    call = parse_chat(body)
    return c.gateway.chat(p, call, OPENAI.name), call.include_usage


def _openai_embeddings(c: Container, p: Principal, body: dict[str, Any]) -> tuple[Awaitable[Result], bool]:
    return c.gateway.embeddings(p, parse_embeddings(body), OPENAI.name), False


def _anthropic_messages(c: Container, p: Principal, body: dict[str, Any]) -> tuple[Awaitable[Result], bool]:
    from turnout.translate.anthropic_inbound import anthropic_to_openai_request

    canonical = anthropic_to_openai_request(body)
    if "metadata" in body:  # its ids are recorded (and checked) as in the other dialects
        canonical["metadata"] = body["metadata"]
    return c.gateway.chat(p, parse_chat(canonical), ANTHROPIC.name, "messages"), True


def _native_chat(c: Container, p: Principal, body: dict[str, Any]) -> tuple[Awaitable[Result], bool]:
    call = parse_chat(native_chat_body(body, completion=False))
    call.stream = False
    return c.gateway.chat(p, call, NATIVE.name), False


def _native_completion(c: Container, p: Principal, body: dict[str, Any]) -> tuple[Awaitable[Result], bool]:
    call = parse_chat(native_chat_body(body, completion=True))
    call.stream = False
    return c.gateway.chat(p, call, NATIVE.name, "completion"), False


def _native_embeddings(c: Container, p: Principal, body: dict[str, Any]) -> tuple[Awaitable[Result], bool]:
    return c.gateway.embeddings(p, parse_embeddings(native_embeddings_body(body)), NATIVE.name), False


def _model_listing(native: bool) -> Handler:
    async def handler(request: Request) -> Response:
        container = container_of(request)
        try:
            principal = authenticate(request, container)
        except TurnoutError as exc:
            return OPENAI.error_response(exc)
        from turnout.domain.capsule import allowed_by_capsule

        snapshot = container.snapshots.current
        if principal.agent_id is None:
            usable = [m for m in snapshot.models.values() if m.usable]
        else:  # an agent may use its enabled models that its capsule admits for its role
            enabled = snapshot.agent_models.get((principal.tenant_id, principal.agent_id), {})
            found = (snapshot.models.get(model_id) for model_id in enabled)
            usable = [
                m for m in found if m is not None and m.usable and allowed_by_capsule(snapshot, principal, m)
            ]
        usable.sort(key=lambda m: m.public_name)
        if native:
            items = [
                {
                    "id": m.public_name,
                    "provider": m.provider_id,
                    "capabilities": ["embedding"]
                    if m.model_type == "embedding"
                    else ["chat", "completion", *sorted(m.capabilities)],
                    "properties": {
                        "context_length": m.ctx_length,
                        "token_limit": m.ctx_length,
                        "pricing": {
                            "input": None if m.pricing_input is None else m.pricing_input / 1000,
                            "output": None if m.pricing_output is None else m.pricing_output / 1000,
                        },
                    },
                    "metadata": {"version": None, "description": m.display_name},
                }
                for m in usable
            ]
            return Response(orjson.dumps({"models": items}), media_type="application/json")
        data = [
            {"id": m.public_name, "object": "model", "created": 0, "owned_by": m.provider_id} for m in usable
        ]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    return handler


ROUTES = [
    Route("/v1/chat/completions", _endpoint(OPENAI, _openai_chat), methods=["POST"]),
    Route("/v1/embeddings", _endpoint(OPENAI, _openai_embeddings), methods=["POST"]),
    Route("/v1/models", _model_listing(native=False), methods=["GET"]),
    Route("/v1/messages", _endpoint(ANTHROPIC, _anthropic_messages), methods=["POST"]),
    Route("/api/models/chat", _endpoint(NATIVE, _native_chat), methods=["POST"]),
    Route("/api/models/completion", _endpoint(NATIVE, _native_completion), methods=["POST"]),
    Route("/api/models/embeddings", _endpoint(NATIVE, _native_embeddings), methods=["POST"]),
    Route("/api/models", _model_listing(native=True), methods=["GET"]),
]


async def _rate(request: Request) -> Response:
    """`POST /api/v2/chat/messages/{id}/feedback` served on the hot path (lean, no FastAPI)."""
    container = container_of(request)
    message_id = request.url.path.split("/")[-2]
    try:
        principal = authenticate(request, container)
        body = decode_json(await request.body())
        try:
            rating = FeedbackIn.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first.get("loc", ())) or None
            raise InvalidRequest(
                f"{param}: {first.get('msg')}" if param else str(first.get("msg")), param=param
            ) from None
        if len(message_id) > 36:
            raise InvalidRequest("message id must be at most 36 characters", param="message_id")
        out = await container.feedback.rate(message_id, rating, principal)
    except TurnoutError as exc:
        return OPENAI.error_response(exc)
    return Response(out.model_dump_json(), media_type="application/json")


PATTERNS = [("POST", "/api/v2/chat/messages/", "/feedback", _rate)]
