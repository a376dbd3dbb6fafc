"""The gateway's results as HTTP responses in the caller's dialect, with ``x-turnout-*`` headers.

A response whose record is still being journaled (``durable``) waits for it before it sends its
last byte: a whole answer before it sends at all (its body was built meanwhile), a stream in its
last batch (the gateway's iterator ends after the write).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from turnout.api.dialects import Dialect
from turnout.domain.snapshot import ModelEntry
from turnout.gateway.results import Answer, Failed, StreamBroken, Streamed, TokenCount


def headers(
    message_id: str | None, model: ModelEntry | None, cost: float | None
) -> list[tuple[bytes, bytes]]:
    """The ``x-turnout-*`` headers of an answer, encoded as the server sends them; the message id
    also as the request id the official SDKs read (``x-request-id``: OpenAI's ``_request_id``,
    ``request-id``: Anthropic's), so a client's request-id logging names Turnout's record."""
    out = [] if message_id is None else message_id_headers(message_id)
    if model is not None:
        out.append((b"x-turnout-model", model.id.encode("latin-1")))
        out.append((b"x-turnout-provider", model.provider_id.encode("latin-1")))
    if cost is not None:
        out.append((b"x-turnout-cost-usd", b"%.8f" % cost))
    return out


def message_id_headers(message_id: str) -> list[tuple[bytes, bytes]]:
    value = message_id.encode("latin-1")
    return [(b"x-turnout-message-id", value), (b"x-request-id", value), (b"request-id", value)]


class JsonAnswer(Response):
    """A 200 JSON answer with its ``x-turnout-*`` headers, the header list built directly: Starlette's
    own ``init_headers`` lowercases, encodes and searches each header of every answer."""

    media_type = "application/json"

    def __init__(self, body: bytes, answer: Answer) -> None:
        self._turnout_headers = (
            headers(answer.message_id, answer.model, answer.cost_usd) + answer.extra_headers
        )
        self._durable = answer.durable
        super().__init__(body, 200)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        self.raw_headers = [
            (b"content-length", b"%d" % len(self.body)),
            (b"content-type", b"application/json"),
            *self._turnout_headers,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._durable is not None:
            await self._durable
        await super().__call__(scope, receive, send)


class _AfterRecord(Response):
    """A finished error response, sent once its record is journaled."""

    def __init__(self, inner: Response, durable: Awaitable[None] | None) -> None:
        self.status_code, self.body, self.raw_headers = inner.status_code, inner.body, inner.raw_headers
        self.background = None
        self._durable = durable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._durable is not None:
            await self._durable
        await super().__call__(scope, receive, send)


def render(dialect: Dialect, result: Answer | Streamed | Failed, include_usage: bool = False) -> Response:
    """``result`` in ``dialect``: a JSON answer, a server-sent event stream or an error."""
    if isinstance(result, Answer):
        if result.raw is not None:  # passed through: the provider's bytes, its model renamed
            return JsonAnswer(result.raw, result)
        return JsonAnswer(
            dialect.answer(result.body, result.model, result.cost_usd, result.message_id), result
        )
    if isinstance(result, Failed):
        response = dialect.error_response(result.error)
        response.raw_headers += message_id_headers(result.message_id)
        return _AfterRecord(response, result.durable)
    passthrough = result.passthrough
    events = _events(dialect, result, include_usage) if passthrough is None else _relayed(passthrough)
    response = StreamingResponse(events, 200, media_type="text/event-stream")
    response.raw_headers += headers(result.message_id, result.model, None) + result.extra_headers
    return response


def render_count(count: TokenCount) -> Response:
    """A ``count_tokens`` answer: the provider's as it came, or the estimate, flagged as one in
    its body and in ``x-turnout-estimated``."""
    extra = headers(None, count.model, None)  # the model and provider; a count has no message
    if count.raw is not None:
        body = count.raw
    else:
        body = orjson.dumps({"input_tokens": count.input_tokens, "estimated": True})
        extra.append((b"x-turnout-estimated", b"true"))
    response = Response(body, 200, media_type="application/json")
    response.raw_headers += extra
    return response


async def _relayed(passthrough: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """A passed-through stream's bytes as they come (the last ones once its record is journaled)."""
    try:
        async for data in passthrough:
            if data:
                yield data
    finally:
        await passthrough.aclose()  # the client left early: the gateway records a cancelled call


async def _events(dialect: Dialect, streamed: Streamed, include_usage: bool) -> AsyncIterator[bytes]:
    """The stream's batches encoded, one write each; the last carries the dialect's end."""
    encoder = dialect.stream_encoder(streamed.model.public_name, include_usage)
    batches = streamed.batches
    try:
        async for batch in batches:
            out = b"".join([encoder.encode(chunk) for chunk in batch])
            if streamed.finished:  # the last batch: the record is journaled
                out += encoder.finish(streamed.usage)
            if out:
                yield out
    except StreamBroken as exc:
        yield encoder.error(exc.message, exc.error_type)
    finally:
        await batches.aclose()  # the client left early: the gateway records a cancelled call
