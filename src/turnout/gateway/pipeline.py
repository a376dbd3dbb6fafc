"""The data-plane pipeline: authenticate -> parse -> plan -> call (failover) -> respond -> record.

Each step lives in its own module; this file only calls them in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import structlog
from starlette.responses import Response, StreamingResponse

from turnout.auth.principal import Principal
from turnout.errors import TurnoutError
from turnout.feedback.recent import RecentDecisions, RecentMessages
from turnout.gateway.dialects import Dialect
from turnout.gateway.failover import Caller, FailoverTrace, Opened
from turnout.gateway.parse import ChatCall
from turnout.gateway.records import CallRecord, RecordSink, tool_names
from turnout.gateway.snapshot import ModelEntry, Snapshot, SnapshotStore
from turnout.ids import new_ordered_id
from turnout.providers.base import ProviderError
from turnout.routing.explain import decision_dict
from turnout.routing.policies import apply_policy_defaults
from turnout.routing.service import RoutingService

log = structlog.get_logger(__name__)


class Gateway:
    """Serves chat and embeddings calls for any dialect."""

    def __init__(
        self,
        snapshots: SnapshotStore,
        caller: Caller,
        sink: RecordSink,
        routing: RoutingService,
        recent: RecentMessages,
        decisions: RecentDecisions,
        *,
        store_text: bool,
    ) -> None:
        self.snapshots = snapshots
        self.caller = caller
        self.sink = sink
        self.routing = routing
        self.recent = recent
        self.decisions = decisions
        self.store_text = store_text

    async def chat(
        self, principal: Principal, call: ChatCall, dialect: Dialect, endpoint: str = "chat"
    ) -> Response:
        record = CallRecord(new_ordered_id(), principal, call, dialect.name, endpoint)
        try:
            snapshot = self.snapshots.current
            plan = self._route(snapshot, principal, call, record)
            trace = FailoverTrace()
            try:
                opened = await self.caller.open(
                    snapshot,
                    plan,
                    lambda adapter, target: adapter.chat_request(target, call.body, stream=call.stream),
                    trace,
                    whole_body=not call.stream,
                )
            finally:
                record.attempts = trace.attempts
            record.model, record.fallback_used = opened.model, opened.fallback_used
            if call.stream:
                return self._stream(opened, record, dialect, call.include_usage)
            completion = opened.adapter.chat_response(opened.target, opened.first_chunk)
        except TurnoutError as exc:
            self._record_error(record, exc)
            return dialect.error_response(exc)
        except asyncio.CancelledError:  # the client went away: the upstream call was cancelled with us
            self.sink.submit(record.finish(status="cancelled", http_status=499, error="client disconnected"))
            raise
        record.mark_first_token()
        record.usage = completion.get("usage")
        choice = (completion.get("choices") or [{}])[0]
        record.finish_reason = choice.get("finish_reason")
        record.tools_used = tool_names(choice.get("message"))
        if self.store_text:
            record.content = (choice.get("message") or {}).get("content")
        row = record.finish(status="ok", http_status=200, store_text=self.store_text)
        self._remember(record)
        self.sink.submit(row)
        return JsonAnswer(
            dialect.answer(completion, opened.model, row.get("cost_usd"), record.message_id), record, row
        )

    async def embeddings(self, principal: Principal, call: ChatCall, dialect: Dialect) -> Response:
        record = CallRecord(new_ordered_id(), principal, call, dialect.name, "embeddings")
        try:
            snapshot = self.snapshots.current
            plan, record.agent_id = self.routing.named_plan(snapshot, principal, call, "embedding")
            trace = FailoverTrace()
            try:
                opened = await self.caller.open(
                    snapshot,
                    plan,
                    lambda adapter, target: adapter.embeddings_request(target, call.body),
                    trace,
                    whole_body=True,
                )
            finally:
                record.attempts = trace.attempts
            record.model, record.fallback_used = opened.model, opened.fallback_used
            result = opened.adapter.embeddings_response(opened.target, opened.first_chunk)
        except TurnoutError as exc:
            self._record_error(record, exc)
            return dialect.error_response(exc)
        except asyncio.CancelledError:  # the client went away: the upstream call was cancelled with us
            self.sink.submit(record.finish(status="cancelled", http_status=499, error="client disconnected"))
            raise
        record.mark_first_token()
        record.usage = result.get("usage")
        row = record.finish(status="ok", http_status=200)
        self.sink.submit(row)
        return JsonAnswer(
            dialect.answer(result, opened.model, row.get("cost_usd"), record.message_id), record, row
        )

    def _stream(self, opened: Opened, record: CallRecord, dialect: Dialect, include_usage: bool) -> Response:
        encoder = dialect.stream_encoder(opened.model.id, include_usage)
        decoder = opened.adapter.stream_decoder(opened.target)

        async def body() -> AsyncIterator[bytes]:
            status = "cancelled"
            error: str | None = "client disconnected"
            message: dict[str, Any] = {"content": [], "tool_calls": []}
            try:
                data = opened.first_chunk
                async for chunk in _chunks_after(opened.response, data):
                    out = bytearray()
                    for item in decoder.feed(chunk):
                        _observe(record, item, message)
                        out += encoder.encode(item)
                    if out:
                        record.mark_first_token()
                        yield bytes(out)
                tail = bytearray()
                for item in decoder.finish():
                    _observe(record, item, message)
                    tail += encoder.encode(item)
                tail += encoder.finish(record.usage)
                yield bytes(tail)
                status, error = "ok", None
            except ProviderError as exc:
                status, error = "error", exc.message
                yield encoder.error(exc.message, exc.error_type)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status, error = "error", f"upstream stream broke: {type(exc).__name__}"
                yield encoder.error(error)
            finally:
                opened.response.close()
                record.tools_used = message["tool_calls"]
                if self.store_text:
                    record.content = "".join(message["content"])
                if status == "ok":
                    self._remember(record)
                self.sink.submit(
                    record.finish(status=status, http_status=200, error=error, store_text=self.store_text)
                )

        response = StreamingResponse(body(), 200, media_type="text/event-stream")
        response.raw_headers += _headers(record, None)
        return response

    def _route(
        self, snapshot: Snapshot, principal: Principal, call: ChatCall, record: CallRecord
    ) -> list[ModelEntry]:
        """Detect the task and rank the candidates; the decision is kept with the record."""
        routed = self.routing.route(snapshot, principal, call)
        record.task_type = routed.detection.task_type
        record.agent_id = routed.agent_id
        decision = orjson.dumps(decision_dict(routed))  # serialised once, for the record and the LRU
        record.decision = orjson.Fragment(decision)
        record.detected_tools = list(routed.detection.tools_used)
        self.decisions.add(record.message_id, principal.tenant_id, decision)
        if call.model is None:
            apply_policy_defaults(call.body, snapshot.policies.get(routed.policy))
        return routed.plan

    def _remember(self, record: CallRecord) -> None:
        """Make the answer ratable at once, before the batch writer stores it."""
        if record.model is not None:
            self.recent.remember(
                record.message_id,
                record.principal.tenant_id,
                record.agent_id,
                record.model.id,
                record.task_type or "general",
                time.time(),
            )

    def _record_error(self, record: CallRecord, exc: TurnoutError) -> None:
        self.sink.submit(record.finish(status="error", http_status=exc.status_code, error=exc.message))


async def _chunks_after(response: aiohttp.ClientResponse, first: bytes) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in response.content.iter_any():
        yield chunk


def _observe(record: CallRecord, chunk: dict[str, Any], message: dict[str, Any]) -> None:
    usage = chunk.get("usage")
    if usage:
        record.usage = usage
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            record.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        if delta.get("content"):
            message["content"].append(delta["content"])
        for call in delta.get("tool_calls") or ():
            name = (call.get("function") or {}).get("name")
            if name:
                message["tool_calls"].append(name)


def _headers(record: CallRecord, cost: float | None) -> list[tuple[bytes, bytes]]:
    """The ``x-turnout-*`` headers of an answer, encoded as the server sends them."""
    headers = [(b"x-turnout-message-id", record.message_id.encode("latin-1"))]
    if record.model is not None:
        headers.append((b"x-turnout-model", record.model.id.encode("latin-1")))
        headers.append((b"x-turnout-provider", record.model.provider_id.encode("latin-1")))
    if cost is not None:
        headers.append((b"x-turnout-cost-usd", b"%.8f" % cost))
    return headers


class JsonAnswer(Response):
    """A 200 JSON answer with its ``x-turnout-*`` headers, the header list built directly: Starlette's
    own ``init_headers`` lowercases, encodes and searches each header of every answer."""

    media_type = "application/json"

    def __init__(self, body: bytes, record: CallRecord, row: dict[str, Any]) -> None:
        self._turnout_headers = _headers(record, row.get("cost_usd"))
        super().__init__(body, 200)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        self.raw_headers = [
            (b"content-length", b"%d" % len(self.body)),
            (b"content-type", b"application/json"),
            *self._turnout_headers,
        ]
