"""The lean `/v1/*` and `/api/models/*` handlers (Starlette, orjson): no FastAPI on the hot path."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.api import model_listing, responses
from turnout.api.answers import render, render_count
from turnout.api.auth import authenticate
from turnout.api.completions import COMPLETIONS, completions_chat_body
from turnout.api.deps import container_of
from turnout.api.dialects import ANTHROPIC, OPENAI, Dialect
from turnout.api.disconnect import WATCH_AFTER_S
from turnout.api.disconnect import DisconnectWatch as _DisconnectWatch
from turnout.api.errors import validation_message
from turnout.api.native import NATIVE, native_chat_body, native_embeddings_body
from turnout.api.parse import client_request_id, decode_json, parse_chat, parse_embeddings
from turnout.api.rejections import refused
from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.domain.requests import ChatCall
from turnout.errors import InvalidRequest, TurnoutError
from turnout.feedback.service import FeedbackIn
from turnout.gateway.results import Answer, Failed, Streamed
from turnout.translate.completions_native import native_completions_body
from turnout.translate.responses import message_id_for
from turnout.translate.types import ChatRequest

Handler = Callable[[Request], Awaitable[Response]]
Result = Answer | Streamed | Failed
Call = TypeVar("Call", bound=ChatCall[Any])


Run = Callable[[Container, Principal, dict[str, Any], Headers], tuple[Awaitable[Result], bool]]
# a Run that also gets the raw body: for a dialect whose body may be passed on as is
PassRun = Callable[[Container, Principal, dict[str, Any], bytes, Headers], tuple[Awaitable[Result], bool]]


def _endpoint(dialect: Dialect, run: Run | None, passing: PassRun | None = None) -> Handler:
    """A data-plane handler: authenticate, parse, then await the gateway in this task and render its
    result in ``dialect``. If that takes over ``WATCH_AFTER_S``, a watcher cancels it (and the
    upstream call) when the client leaves; fast answers never start the watcher task (its start is an
    entry in a ``TimeoutLane``, not a timer handle). ``run`` parses synchronously and hands back the
    gateway's awaitable and whether a stream asked for usage: no wrapper coroutine, because every
    resume of the request passes through each awaiting frame, so wrappers cost on every upstream read.
    ``passing`` parses instead of ``run`` where the client's body may go upstream untouched."""

    async def handler(request: Request) -> Response:
        container = container_of(request)
        try:
            principal = authenticate(request, container)
            raw = await request.body()
            body = decode_json(raw)
            if passing is None:
                assert run is not None
                work, include_usage = run(container, principal, body, request.headers)  # errors raise here
            else:
                work, include_usage = passing(container, principal, body, raw, request.headers)
        except TurnoutError as exc:
            return refused(request, dialect, exc)
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


def _with_client_id(call: Call, headers: Headers) -> Call:
    """The call with the caller's own id for it, if it sent one (``X-Client-Request-Id``)."""
    call.client_request_id = client_request_id(headers)
    return call


def _openai_chat(
    c: Container, p: Principal, body: dict[str, Any], headers: Headers
) -> tuple[Awaitable[Result], bool]:
    call = _with_client_id(parse_chat(body), headers)
    return c.gateway.chat(p, call, OPENAI.name), call.include_usage


def _openai_embeddings(
    c: Container, p: Principal, body: dict[str, Any], headers: Headers
) -> tuple[Awaitable[Result], bool]:
    return c.gateway.embeddings(p, _with_client_id(parse_embeddings(body), headers), OPENAI.name), False


def _anthropic_messages(
    c: Container, p: Principal, body: dict[str, Any], raw: bytes, headers: Headers
) -> tuple[Awaitable[Result], bool]:
    """Validated and translated as before; the body (and its ``anthropic-*`` headers) also kept, to
    go on untouched to an Anthropic provider."""
    call = _with_client_id(_anthropic_call(body, raw, headers), headers)
    return c.gateway.chat(p, call, ANTHROPIC.name, "messages"), True


def _anthropic_call(
    body: dict[str, Any], raw: bytes, headers: Headers, count_tokens: bool = False
) -> ChatCall[ChatRequest]:
    from turnout.translate.anthropic_inbound import canonical_request
    from turnout.translate.anthropic_native import COUNT_TOKENS, MESSAGES, native_body
    from turnout.translate.openai import EXTENSION_FIELDS

    inbound = canonical_request(body, count_tokens=count_tokens)
    canonical = inbound.request
    for name in EXTENSION_FIELDS:  # Turnout's own fields: read (and checked) as in the other dialects
        if name in body:
            canonical[name] = body[name]  # type: ignore[literal-required]
    call = parse_chat(canonical)
    fmt = COUNT_TOKENS if count_tokens else MESSAGES
    call.native = native_body(body, raw, headers, fmt, inbound.beyond)
    call.native_tokens = inbound.native_tokens  # documents left out of the canonical form still cost
    return call


async def _count_tokens(request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: the Anthropic dialect's token count, for the model a
    ``/v1/messages`` call would be routed to (the provider's count, or Turnout's flagged estimate)."""
    container = container_of(request)
    try:
        principal = authenticate(request, container)
        raw = await request.body()
        call = _anthropic_call(decode_json(raw), raw, request.headers, count_tokens=True)
        return render_count(await container.gateway.count_tokens(principal, call))
    except TurnoutError as exc:
        return refused(request, ANTHROPIC, exc)


def _native_chat(
    c: Container, p: Principal, body: dict[str, Any], headers: Headers
) -> tuple[Awaitable[Result], bool]:
    call = _with_client_id(parse_chat(native_chat_body(body, completion=False)), headers)
    call.stream = False
    return c.gateway.chat(p, call, NATIVE.name), False


def _legacy_completion(
    c: Container, p: Principal, body: dict[str, Any], raw: bytes, headers: Headers
) -> tuple[Awaitable[Result], bool]:
    """Checked and translated to chat; the body also kept, to go on as it is to a server that has
    the completions endpoint (a self-hosted one)."""
    call = _with_client_id(parse_chat(completions_chat_body(body)), headers)
    call.native = native_completions_body(body, raw)
    return c.gateway.chat(p, call, OPENAI.name, "completions"), call.include_usage


def _native_completion(
    c: Container, p: Principal, body: dict[str, Any], headers: Headers
) -> tuple[Awaitable[Result], bool]:
    call = _with_client_id(parse_chat(native_chat_body(body, completion=True)), headers)
    call.stream = False
    return c.gateway.chat(p, call, NATIVE.name, "completion"), False


def _native_embeddings(
    c: Container, p: Principal, body: dict[str, Any], headers: Headers
) -> tuple[Awaitable[Result], bool]:
    call = _with_client_id(parse_embeddings(native_embeddings_body(body)), headers)
    return c.gateway.embeddings(p, call, NATIVE.name), False


ROUTES = [
    Route("/v1/chat/completions", _endpoint(OPENAI, _openai_chat), methods=["POST"]),
    Route("/v1/embeddings", _endpoint(OPENAI, _openai_embeddings), methods=["POST"]),
    Route("/v1/models", model_listing.list_models, methods=["GET"]),
    Route("/v1/messages", _endpoint(ANTHROPIC, None, _anthropic_messages), methods=["POST"]),
    Route("/v1/messages/count_tokens", _count_tokens, methods=["POST"]),
    Route("/v1/responses", responses.create, methods=["POST"]),
    Route("/v1/completions", _endpoint(COMPLETIONS, None, _legacy_completion), methods=["POST"]),
    Route("/api/models/chat", _endpoint(NATIVE, _native_chat), methods=["POST"]),
    Route("/api/models/completion", _endpoint(NATIVE, _native_completion), methods=["POST"]),
    Route("/api/models/embeddings", _endpoint(NATIVE, _native_embeddings), methods=["POST"]),
    Route("/api/models", model_listing.list_native, methods=["GET"]),
]


async def _rate(request: Request) -> Response:
    """`POST /api/v2/chat/messages/{id}/feedback` served on the hot path (lean, no FastAPI)."""
    container = container_of(request)
    message_id = request.url.path.split("/")[-2]
    message_id = message_id_for(message_id) or message_id  # a Responses API id names its call too
    try:
        principal = authenticate(request, container)
        body = decode_json(await request.body())
        try:
            rating = FeedbackIn.model_validate(body)
        except ValidationError as exc:
            message, param = validation_message(exc.errors())
            raise InvalidRequest(message, param=param) from None
        if len(message_id) > 36:
            raise InvalidRequest("message id must be at most 36 characters", param="message_id")
        out = await container.feedback.rate(message_id, rating, principal)
    except TurnoutError as exc:
        return refused(request, OPENAI, exc)
    return Response(out.model_dump_json(), media_type="application/json")


PATTERNS = [
    ("POST", "/api/v2/chat/messages/", "/feedback", _rate),
    *responses.PATTERNS,
    ("GET", model_listing.PREFIX, None, model_listing.retrieve_model),  # ids hold slashes: the rest
]
