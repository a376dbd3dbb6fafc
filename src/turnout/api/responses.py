"""The OpenAI Responses API: ``POST /v1/responses`` (whole and streamed), ``GET`` and ``DELETE
/v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``.

A Responses request is translated to a canonical chat call (``translate.responses``) and served by
the same gateway as chat: routing (``model: "auto"``), budgets, failover, the record and the
decision log apply unchanged; the record's dialect and endpoint say ``responses``. The response id
is derived from the record's message id, so ``x-turnout-message-id``, feedback and the decision log
all reach the same call. Stored responses (``store`` defaults to true, as at OpenAI) are written
before the client sees the answer's end, so a follow-up naming it never races its write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, cast

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from turnout.api.answers import JsonAnswer, headers, render
from turnout.api.auth import authenticate
from turnout.api.deps import container_of
from turnout.api.dialects import OPENAI
from turnout.api.disconnect import WATCH_AFTER_S, DisconnectWatch
from turnout.api.parse import client_request_id, decode_json, parse_chat
from turnout.api.rejections import refused
from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.errors import InvalidRequest, TurnoutError
from turnout.gateway.results import Answer, Failed, StreamBroken, Streamed
from turnout.translate.responses import (
    ResponsesRequest,
    ResponsesStreamEncoder,
    completion_to_response,
    parse_responses,
    response_id_for,
)
from turnout.translate.responses import sse as sse_event
from turnout.translate.responses_native import TERMINAL, native_responses_body
from turnout.translate.sse import SseParser
from turnout.translate.types import Completion

log = structlog.get_logger(__name__)
DIALECT = ENDPOINT = "responses"
Save = Callable[[dict[str, Any]], Awaitable[None]]


async def create(request: Request) -> Response:
    """``POST /v1/responses``."""
    container = container_of(request)
    try:
        principal = authenticate(request, container)
        body = decode_json(await request.body())
        previous = body.get("previous_response_id")
        history = await container.responses.history(principal, previous) if isinstance(previous, str) else []
        parsed = parse_responses(body, history)
        call = parse_chat(parsed.chat)
        call.client_request_id = client_request_id(request.headers)
    except TurnoutError as exc:
        return refused(request, OPENAI, exc)
    call.include_usage = True  # a Responses stream always ends with its usage
    call.native = native_responses_body(body, history, parsed.input_items)  # for providers speaking it
    current = asyncio.current_task()
    assert current is not None
    watch = DisconnectWatch(request, current)
    lane = container.timeouts.lane(WATCH_AFTER_S)
    lane.add(watch, watch.start)
    try:
        result = await container.gateway.chat(principal, call, DIALECT, ENDPOINT)
        return await _respond(container, principal, parsed, result)
    except TurnoutError as exc:
        return OPENAI.error_response(exc)
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        current.uncancel()
        return Response(status_code=499)
    finally:
        lane.discard(watch)
        if watch.watcher is not None:
            watch.watcher.cancel()


async def _respond(
    container: Container, principal: Principal, parsed: ResponsesRequest, result: Answer | Streamed | Failed
) -> Response:
    if isinstance(result, Failed):
        return render(OPENAI, result)
    response_id = response_id_for(result.message_id)
    save = _saver(container, principal, parsed, result.message_id) if parsed.store else None
    if isinstance(result, Answer):
        if result.raw is not None:  # passed through: the provider's response, named as Turnout's
            response = _as_ours(orjson.loads(result.raw), response_id, result.model.public_name, parsed)
        else:
            completion = cast(Completion, result.body)
            response = completion_to_response(completion, response_id, result.model.public_name, parsed.echo)
        if save is not None:
            await save(response)
        return JsonAnswer(orjson.dumps(response), result)
    if result.passthrough is not None:
        relayed = _renamed(result.passthrough, response_id, result.model.public_name, parsed, save)
        stream = StreamingResponse(relayed, 200, media_type="text/event-stream")
        stream.raw_headers += headers(result.message_id, result.model, None) + result.extra_headers
        return stream
    encoder = ResponsesStreamEncoder(response_id, result.model.public_name, parsed.echo)
    stream = StreamingResponse(_events(encoder, result, save), 200, media_type="text/event-stream")
    stream.raw_headers += headers(result.message_id, result.model, None) + result.extra_headers
    return stream


def _saver(container: Container, principal: Principal, parsed: ResponsesRequest, message_id: str) -> Save:
    async def save(response: dict[str, Any]) -> None:
        conversation = parsed.conversation + response.get("output", [])  # a list: the decoder checked
        try:
            await container.responses.save(principal, response, message_id, parsed.input_items, conversation)
        except Exception as exc:  # the answer was made and recorded: the client still gets it
            log.error("response_store_failed", response_id=response["id"], error=str(exc)[:300])

    return save


async def _events(
    encoder: ResponsesStreamEncoder, streamed: Streamed, save: Save | None
) -> AsyncIterator[bytes]:
    """The stream's batches as typed events; the stored response is written before its
    ``response.completed`` event is sent."""
    batches = streamed.batches
    try:
        yield encoder.start()
        async for batch in batches:
            out = b"".join([encoder.encode(chunk) for chunk in batch])
            if streamed.finished:
                out += encoder.finish(streamed.usage)
                if save is not None and encoder.response is not None:
                    await save(encoder.response)
            if out:
                yield out
    except StreamBroken as exc:
        yield encoder.error(exc.message, exc.error_type)
    finally:
        await batches.aclose()


def _as_ours(response: Any, response_id: str, model: str, parsed: ResponsesRequest) -> dict[str, Any]:
    """A provider's response object as the client's: Turnout's id and model name, and the request's
    own ``store`` and ``previous_response_id`` (the provider was sent neither: Turnout keeps state)."""
    out = dict(response) if isinstance(response, dict) else {}
    out |= {"id": response_id, "model": model, "store": parsed.store}
    out["previous_response_id"] = parsed.previous_response_id
    return out


async def _renamed(
    relayed: AsyncGenerator[bytes, None],
    response_id: str,
    model: str,
    parsed: ResponsesRequest,
    save: Save | None,
) -> AsyncIterator[bytes]:
    """A passed-through event stream with each event's ``response`` named as Turnout's; the final
    response is stored before its terminal event goes out."""
    sse = SseParser()
    try:
        async for data in relayed:
            out = b""
            for event in sse.feed(data):
                try:
                    payload = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    continue  # not an event a client can read: the record has what happened
                kind = payload.get("type") if isinstance(payload, dict) else None
                if not isinstance(kind, str) or not kind:  # not an event a client can read
                    out += b"data: " + event.data.encode() + b"\n\n"
                    continue
                if isinstance(payload.get("response"), dict):
                    payload["response"] = _as_ours(payload["response"], response_id, model, parsed)
                    if kind in TERMINAL and save is not None:
                        await save(payload["response"])
                out += sse_event(payload)
            if out:
                yield out
    finally:
        await relayed.aclose()


def _response_id(request: Request, suffix: str = "") -> str:
    path = request.url.path
    response_id = path[len("/v1/responses/") : len(path) - len(suffix)]
    if len(response_id) > 40:
        raise InvalidRequest("response id must be at most 40 characters", param="response_id")
    return response_id


async def retrieve(request: Request) -> Response:
    """``GET /v1/responses/{id}``: a stored response, as the client first got it."""
    container = container_of(request)
    try:
        principal = authenticate(request, container)
        response = await container.responses.get(principal, _response_id(request))
    except TurnoutError as exc:
        return refused(request, OPENAI, exc)
    return Response(orjson.dumps(response), media_type="application/json")


async def remove(request: Request) -> Response:
    """``DELETE /v1/responses/{id}``."""
    container = container_of(request)
    try:
        principal = authenticate(request, container)
        response_id = _response_id(request)
        await container.responses.delete(principal, response_id)
    except TurnoutError as exc:
        return refused(request, OPENAI, exc)
    body = {"id": response_id, "object": "response.deleted", "deleted": True}
    return Response(orjson.dumps(body), media_type="application/json")


async def input_items(request: Request) -> Response:
    """``GET /v1/responses/{id}/input_items`` (``limit`` 1-100, ``after``, ``order`` asc|desc)."""
    container = container_of(request)
    try:
        principal = authenticate(request, container)
        response_id = _response_id(request, "/input_items")
        query = request.query_params
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise InvalidRequest("limit must be an integer from 1 to 100", param="limit")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'", param="order")
        page = await container.responses.input_items(
            principal, response_id, limit=limit, after=query.get("after"), order=order
        )
    except TurnoutError as exc:
        return refused(request, OPENAI, exc)
    return Response(page.model_dump_json(), media_type="application/json")


#: (method, prefix, suffix, handler) for the hot path's one-segment patterns
PATTERNS = [
    ("GET", "/v1/responses/", "/input_items", input_items),
    ("GET", "/v1/responses/", "", retrieve),
    ("DELETE", "/v1/responses/", "", remove),
]
