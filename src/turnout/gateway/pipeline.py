"""The data-plane pipeline: route -> (cache) -> call (failover) -> answer -> record, for any client
dialect.

``api/`` authenticates and parses a request into a ``ChatCall``; this module calls the steps in
order and returns a domain result (``gateway.results``) that ``api/`` renders in the caller's
dialect. Every answer that reaches the record step, errors included, carries its record's journal
write to await before its last byte (``RecordSink.submit``'s future). A call the response cache
applies to (``gateway.cache``) is looked up after routing; a hit calls nothing and reserves nothing.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, Awaitable
from decimal import Decimal
from typing import Any, cast

import aiohttp
import orjson
import structlog

from turnout import tracing
from turnout.auth.principal import Principal
from turnout.domain.policies import apply_policy_defaults
from turnout.domain.requests import ChatCall
from turnout.domain.snapshot import ModelEntry, Snapshot, SnapshotStore
from turnout.errors import RequestCancelled, TurnoutError
from turnout.feedback.recent import RecentDecisions, RecentMessages
from turnout.gateway.cache import (
    HIT,
    MISS,
    STORABLE,
    CachedAnswer,
    ResponseCache,
    Storing,
    StreamAssembler,
    completion_chunks,
    rule_for,
    storing_for,
)
from turnout.gateway.failover import CLIENT_ERRORS, Caller, FailoverTrace, Opened
from turnout.gateway.records import CallRecord, RecordSink, tool_names
from turnout.gateway.results import Answer, Failed, StreamBroken, Streamed, TokenCount
from turnout.ids import new_ordered_id
from turnout.providers.base import ChatAdapter, ProviderError, Target, UpstreamRequest
from turnout.routing.explain import decision_dict
from turnout.routing.service import Routed, RoutingService
from turnout.spend.guard import SpendGuard, rate_headers
from turnout.tokens import answer_chars, estimated_usage
from turnout.translate.passthrough import StreamRelay
from turnout.translate.types import Chunk, Completion, EmbeddingsResponse, Usage

log = structlog.get_logger(__name__)
CANCELLED_BY_COMMAND = "the request was cancelled by a model.request.cancel command"


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
        spend: SpendGuard | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.snapshots = snapshots
        self.caller = caller
        self.sink = sink
        self.routing = routing
        self.recent = recent
        self.decisions = decisions
        self.store_text = store_text
        self.spend = spend
        self.cache = cache
        # calls in flight (message id -> their task, tenant and the caller's own id of them), for
        # model.request.cancel; and the ones that command cancelled, so they are recorded and
        # answered as such
        self.inflight: dict[str, tuple[asyncio.Task[Any], str, str | None]] = {}
        self._cancelled: set[str] = set()
        self._streaming: dict[str, Opened] = {}  # calls whose stream is being sent, by message id

    async def chat(
        self, principal: Principal, call: ChatCall, dialect: str, endpoint: str = "chat"
    ) -> Answer | Streamed | Failed:
        """Route, call and record one chat call; ``dialect`` names the caller's, for the record."""
        record = CallRecord(new_ordered_id(), principal, call, dialect, endpoint)
        task = asyncio.current_task()
        if task is not None:
            self.inflight[record.message_id] = (task, principal.tenant_id, call.client_request_id)
        try:
            snapshot = self.snapshots.current
            spend = self.spend
            if spend is not None and spend.covers(snapshot) and spend.unprimed(snapshot):
                await spend.prime(snapshot)  # steering budgets new here: their spend, before routing
            routed = self._route(snapshot, principal, call, record)
            plan = routed.plan
            storing: Storing | None = None
            rule = rule_for(snapshot, principal.tenant_id, routed.agent_id, record.policy)
            if rule is not None and self.cache is not None:  # opted in: look it up (a hit calls nothing)
                storing = storing_for(principal.tenant_id, call, rule)
                cached = await self.cache.get(storing) if storing is not None else None
                hit = snapshot.models.get(cached.model_id) if cached is not None else None
                if cached is not None and hit is not None:
                    return self._hit(record, cached, hit)
            if spend is not None and spend.covers(snapshot):  # reserve, or refuse
                try:
                    record.hold = await spend.reserve(
                        snapshot, principal, call, plan, routed.agent_id, record.policy, record.message_id
                    )
                except TurnoutError:  # refused: recorded against the model it was going to (0 attempts)
                    record.model = plan[0] if plan else None
                    raise
            trace = FailoverTrace()
            try:
                opened = await self.caller.open(
                    snapshot,
                    plan,
                    (lambda adapter, target: adapter.chat_request(target, call.body, stream=call.stream))
                    if call.native is None
                    else functools.partial(_native_or_chat, call),
                    trace,
                    tenant_id=principal.tenant_id,
                    parse=None if call.stream else _parse_chat,
                )
            finally:  # a failed call is recorded against the last model it was tried on
                record.attempts, record.model = trace.attempts, trace.last
                record.models_tried = trace.models
            record.fallback_used = opened.fallback_used
            if call.stream:
                streamed = Streamed(opened.model, record.message_id, extra_headers=_rate_headers(record))
                if storing is not None:  # kept once it ran to its end
                    storing.assembler = StreamAssembler()
                    streamed.extra_headers += MISS
                if opened.native and call.native is not None:
                    relay = call.native.format.relay(opened.model.public_name)
                    streamed.passthrough = self._relay(opened, record, relay, storing)
                else:
                    streamed.batches = self._stream(opened, record, streamed, storing)
                return streamed
            completion = cast(Completion, opened.result or {})  # what _parse_chat returned
        except TurnoutError as exc:
            return self._failed(record, exc)
        except asyncio.CancelledError:  # the client went away (or a command): the upstream call too
            if (cut := self._cut(record, task)) is None:
                raise
            return cut
        record.mark_first_token()
        record.usage = completion.get("usage")
        if not record.usage:  # some servers leave it out: estimated, marked, priced, told to the client
            answered = answer_chars(completion.get("choices"))
            completion["usage"] = record.usage = cast(Usage, estimated_usage(call.body, answered))
            record.usage_estimated = True
        row, durable = self._answered(record, completion)  # api/ renders while the journal writes
        cost = _as_float(row.get("cost_usd"))
        extra = _rate_headers(record)
        if storing is not None and self.cache is not None and record.finish_reason in STORABLE:
            self.cache.put(storing, opened.model.id, completion)
            extra += MISS
        raw = None
        if opened.native and call.native is not None:  # passed through: back as the provider wrote it
            raw = call.native.format.answer(opened.first_chunk, opened.model.public_name)
        return Answer(completion, opened.model, record.message_id, cost, durable, extra, raw)

    def _cut(self, record: CallRecord, task: asyncio.Task[Any] | None) -> Failed | None:
        """A call cancelled before its answer (in the ``except CancelledError`` of its run), priced
        as cut: cancelled by ``model.request.cancel``, recorded and its 409 returned; its client
        gone, recorded, and None: the caller re-raises the cancellation."""
        _price_cut(record, 0)
        if record.message_id in self._cancelled and task is not None:
            task.uncancel()  # cancelled by model.request.cancel: recorded and answered as such
            cancelled = RequestCancelled(CANCELLED_BY_COMMAND).final()  # SDKs retry a 409
            return self._failed(record, cancelled, status="cancelled", error="cancelled by command")
        self._submit(record.finish(status="cancelled", http_status=499, error="client disconnected"), record)
        return None

    def _answered(
        self, record: CallRecord, completion: Completion
    ) -> tuple[dict[str, Any], Awaitable[None] | None]:
        """Record a whole answer: its row, and the journal write to await before its last byte."""
        choice = (completion.get("choices") or [{}])[0]
        record.finish_reason = choice.get("finish_reason")
        record.tools_used = tool_names(choice.get("message"))
        if self.store_text:
            content = (choice.get("message") or {}).get("content")
            record.content = content if isinstance(content, str) else None
        row = record.finish(status="ok", http_status=200, store_text=self.store_text)
        self._remember(record)
        return row, self._submit(row, record)

    def _hit(self, record: CallRecord, cached: CachedAnswer, model: ModelEntry) -> Answer | Streamed:
        """A call answered from the cache: recorded as a hit of ``model`` (which answered it first),
        at no cost, whole or as the stream the client asked for."""
        completion = cached.completion()
        record.model, record.attempts, record.cache_hit = model, 0, True
        record.mark_first_token()
        record.usage = completion.get("usage")
        _, durable = self._answered(record, completion)
        if not record.call.stream:
            return Answer(completion, model, record.message_id, 0.0, durable, list(HIT))
        streamed = Streamed(model, record.message_id, extra_headers=list(HIT))
        streamed.batches = _replayed(completion, durable, streamed)
        return streamed

    async def count_tokens(self, principal: Principal, call: ChatCall) -> TokenCount:
        """The prompt's input tokens for the model a chat call would be routed to: the provider's
        own count where it has one for the call's native body (Anthropic's ``count_tokens``), else
        Turnout's estimate. Not a chat call: nothing is reserved or recorded, it is logged."""
        snapshot = self.snapshots.current
        model = self.routing.route(snapshot, principal, call).plan[0]
        counted: int | None = None
        raw: bytes | None = None
        if call.native is not None:
            try:
                raw = await self.caller.exchange(snapshot, model, call.native, principal.tenant_id)
            except ProviderError as exc:
                if exc.status_code in CLIENT_ERRORS:
                    raise
                log.warning("count_tokens.upstream_failed", model=model.id, error=exc.message[:300])
            except TurnoutError as exc:  # no credential: the estimate still answers
                log.warning("count_tokens.upstream_failed", model=model.id, error=exc.message[:300])
            else:
                if raw is None and call.native.beyond is not None:  # an estimate would leave it out
                    raise call.native.beyond
            counted = _input_tokens(raw)
        estimated = counted is None
        if counted is None:
            raw, counted = None, call.prompt_tokens
        log.info(
            "count_tokens",
            tenant=principal.tenant_id,
            model=model.id,
            input_tokens=counted,
            estimated=estimated,
        )
        return TokenCount(counted, model, estimated, raw)

    async def embeddings(self, principal: Principal, call: ChatCall, dialect: str) -> Answer | Failed:
        """Call and record one embeddings call (a named model and its fallbacks: no routing)."""
        record = CallRecord(new_ordered_id(), principal, call, dialect, "embeddings")
        task = asyncio.current_task()
        if task is not None:  # cancellable by model.request.cancel, as a chat call is
            self.inflight[record.message_id] = (task, principal.tenant_id, call.client_request_id)
        try:
            snapshot = self.snapshots.current
            plan, record.agent_id = self.routing.named_plan(snapshot, principal, call, "embedding")
            if self.spend is not None and self.spend.covers(snapshot):
                record.hold = await self.spend.reserve(
                    snapshot, principal, call, plan, record.agent_id, None, record.message_id
                )
            trace = FailoverTrace()
            try:
                opened = await self.caller.open(
                    snapshot,
                    plan,
                    lambda adapter, target: adapter.embeddings_request(target, call.body),
                    trace,
                    tenant_id=principal.tenant_id,
                    parse=_parse_embeddings,
                )
            finally:
                record.attempts, record.model = trace.attempts, trace.last
                record.models_tried = trace.models
            record.fallback_used = opened.fallback_used
            result = cast(EmbeddingsResponse, opened.result or {})  # what _parse_embeddings returned
        except TurnoutError as exc:
            return self._failed(record, exc)
        except asyncio.CancelledError:  # the client went away (or a command): the upstream call too
            if (cut := self._cut(record, task)) is None:
                raise
            return cut
        record.mark_first_token()
        record.usage = result.get("usage")
        row = record.finish(status="ok", http_status=200)
        durable = self._submit(row, record)
        cost = _as_float(row.get("cost_usd"))
        return Answer(result, opened.model, record.message_id, cost, durable, _rate_headers(record))

    async def _stream(
        self, opened: Opened, record: CallRecord, streamed: Streamed, storing: Storing | None = None
    ) -> AsyncGenerator[list[Chunk], None]:
        """The canonical chunks of each upstream read. The last batch comes once the record is
        journaled, with ``streamed.usage`` set, so the stream's last bytes follow its record."""
        decoder = opened.decoder
        assert decoder is not None, "a stream is opened with its decoder"
        message: dict[str, Any] = {"content": [], "tool_calls": [], "chars": 0}
        keep = storing.assembler if storing is not None else None
        self._streaming[record.message_id] = opened
        try:
            if opened.first_items:  # decoded by failover, which checked them
                for item in opened.first_items:
                    _observe(record, item, message)
                if keep is not None:
                    keep.feed(opened.first_items)
                record.mark_first_token()
                yield opened.first_items
            async for chunk in opened.response.content.iter_any():
                items = decoder.feed(chunk)
                if items:
                    for item in items:
                        _observe(record, item, message)
                    if keep is not None:
                        keep.feed(items)
                    record.mark_first_token()
                    yield items
            tail = decoder.finish()
            for item in tail:
                _observe(record, item, message)
            if keep is not None:
                keep.feed(tail)
            broken: StreamBroken | None = None
        except (ProviderError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            broken = _broken(exc)
        except BaseException:  # the client went away (or a command, before its stream began)
            self._finish_stream(record, message, "cancelled", self._why_cancelled(record))
            raise
        finally:
            self._streaming.pop(record.message_id, None)
            opened.close()  # a group member's stream is no longer in flight
        broken = await self._stream_ended(record, message, broken, storing)
        if broken is not None:
            raise broken
        streamed.usage, streamed.finished = record.usage, True
        yield tail

    async def _relay(
        self, opened: Opened, record: CallRecord, relay: StreamRelay, storing: Storing | None = None
    ) -> AsyncGenerator[bytes, None]:
        """A passed-through stream: each upstream read goes on as it arrives (through ``relay``,
        which renames the model) and is decoded for the record on the way. The read that ends the
        stream is held back until the record is journaled, so the last bytes follow the record."""
        decoder = opened.decoder
        assert decoder is not None, "a stream is opened with its decoder"
        message: dict[str, Any] = {"content": [], "tool_calls": [], "chars": 0}
        held = b""
        keep = storing.assembler if storing is not None else None
        self._streaming[record.message_id] = opened
        try:
            for item in opened.first_items:  # decoded by failover, which checked them
                _observe(record, item, message)
            if keep is not None:
                keep.feed(opened.first_items)
            record.mark_first_token()
            if getattr(decoder, "done", False):
                held = opened.first_chunk
            else:
                yield relay.feed(opened.first_chunk)
            async for chunk in opened.response.content.iter_any():
                items = decoder.feed(chunk)
                for item in items:
                    _observe(record, item, message)
                if keep is not None:
                    keep.feed(items)
                if getattr(decoder, "done", False):
                    held += chunk
                    continue
                out = relay.feed(chunk)
                if out:
                    yield out
            tail = decoder.finish()
            for item in tail:
                _observe(record, item, message)
            if keep is not None:
                keep.feed(tail)
            broken: StreamBroken | None = None
        except (ProviderError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            broken = _broken(exc)
        except BaseException:  # the client went away (or a command, before its stream began)
            self._finish_stream(record, message, "cancelled", self._why_cancelled(record))
            raise
        finally:
            self._streaming.pop(record.message_id, None)
            opened.close()  # a group member's stream is no longer in flight
        broken = await self._stream_ended(record, message, broken, storing)
        yield relay.feed(held) if broken is None else relay.error(broken.message, broken.error_type)

    async def _stream_ended(
        self,
        record: CallRecord,
        message: dict[str, Any],
        broken: StreamBroken | None,
        storing: Storing | None = None,
    ) -> StreamBroken | None:
        """Record a stream that ran to its end, broke, or was stopped by ``model.request.cancel``
        (recorded ``cancelled``, 409, as a cancelled whole answer is), and cache it when it is
        whole; return once the record is journaled, so that the stream's last bytes follow it, with
        what ends the stream instead of its last bytes (None: nothing)."""
        if broken is not None and record.message_id in self._cancelled:  # cancel closed its upstream
            durable = self._finish_stream(record, message, "cancelled", "cancelled by command", 409)
            broken = StreamBroken(CANCELLED_BY_COMMAND, RequestCancelled.error_type)
        else:
            if broken is None and not record.usage:  # llama.cpp omits it even when asked: estimate it
                record.usage = estimated_usage(record.call.body, message["chars"])
                record.usage_estimated = True
            if broken is None and storing is not None:
                self._keep_stream(record, storing)
            status, error = ("ok", None) if broken is None else ("error", broken.message)
            durable = self._finish_stream(record, message, status, error)
        if durable is not None:
            await durable
        return broken

    def _keep_stream(self, record: CallRecord, storing: Storing) -> None:
        """Cache a stream that ran to a storable end, as the whole answer its chunks make up."""
        finish, model, keep = record.finish_reason, record.model, storing.assembler
        if self.cache is None or keep is None or model is None or finish is None or finish not in STORABLE:
            return
        self.cache.put(storing, model.id, keep.completion(model.id, finish, record.usage))

    def cancel(self, message_id: str, principal: Principal) -> bool | None:
        """Cancel a call in flight here (``model.request.cancel``): its upstream call is cancelled,
        it is recorded ``cancelled`` and its client answered 409, or, once its stream has begun,
        told in its stream with the dialect's error event. None: not in flight here; False:
        another tenant's (a platform admin may cancel any)."""
        held = self.inflight.get(message_id)
        if held is None:
            return None
        task, tenant, _ = held
        if tenant != principal.tenant_id and not principal.has_any("platform_admin"):
            return False
        self._cancelled.add(message_id)
        streaming = self._streaming.get(message_id)
        if streaming is not None:  # its reads break off; the stream ends with an error event
            streaming.response.close()
        else:
            task.cancel()
        log.info("request.cancel_requested", request_id=message_id, by=principal.subject)
        return True

    def cancel_named(self, client_request_id: str, principal: Principal) -> list[str] | None:
        """Cancel the calls in flight here that their caller named ``client_request_id``
        (``X-Client-Request-Id``), of the principal's tenant (a platform admin's: of any tenant), as
        ``cancel`` does; their message ids, or None when none is in flight here."""
        anyone = principal.has_any("platform_admin")
        named = [
            message_id
            for message_id, (_, tenant, name) in self.inflight.items()
            if name == client_request_id and (anyone or tenant == principal.tenant_id)
        ]  # a command's scan of the calls in flight: nothing kept on the request path for it
        done = [message_id for message_id in named if self.cancel(message_id, principal)]
        return done or None

    def _why_cancelled(self, record: CallRecord) -> str:
        return "cancelled by command" if record.message_id in self._cancelled else "client disconnected"

    def _route(self, snapshot: Snapshot, principal: Principal, call: ChatCall, record: CallRecord) -> Routed:
        """Detect the task and rank the candidates; the decision is kept with the record."""
        routing_started = tracing.start_routing() if tracing.ENABLED else None
        try:
            routed = self.routing.route(snapshot, principal, call)
        except TurnoutError as exc:
            if routing_started is not None:
                tracing.end_routing(routing_started, None, None, [], exc.code or exc.error_type)
            raise
        if routing_started is not None:
            policy = routed.policy if call.model is None else None
            tracing.end_routing(
                routing_started, routed.detection.task_type, policy, [m.id for m in routed.plan]
            )
        record.task_type = routed.detection.task_type
        record.agent_id = routed.agent_id
        record.prompt_vector = routed.prompt_vector
        decision = orjson.dumps(decision_dict(routed))  # serialised once, for the record and the LRU
        record.decision = orjson.Fragment(decision)
        record.detected_tools = list(routed.detection.tools_used)
        record.policy = routed.policy if call.model is None else None
        self.decisions.add(record.message_id, principal.tenant_id, decision)
        if call.model is None:
            apply_policy_defaults(call.body, snapshot.policies.get(routed.policy))
        return routed

    def _submit(
        self, row: dict[str, Any], record: CallRecord, error_type: str | None = None
    ) -> Awaitable[None] | None:
        """Hand a finished record to the writer; its decision learns how the call ended, and its
        reservation is settled with the cost it recorded (released when it failed)."""
        if self.inflight.pop(record.message_id, None) is not None and self._cancelled:
            self._cancelled.discard(record.message_id)
        if tracing.ENABLED:
            self._traced(row, record, error_type)
        if record.hold is not None and self.spend is not None:
            self.spend.settle(record.hold, row)
        self.decisions.settle(row["id"], row)
        return self.sink.submit(row)

    def _traced(self, row: dict[str, Any], record: CallRecord, error_type: str | None) -> None:
        """The finished call on its server span; its text only where text may be stored."""
        model = record.model
        provider = self.snapshots.current.providers.get(model.provider_id) if model is not None else None
        text = self.store_text and record.endpoint != "embeddings"
        tracing.record_call(
            row,
            record.call.model or "auto",
            model.public_name if model is not None else None,
            provider.provider_type if provider is not None else None,
            error_type,
            record.call.body.get("messages") if text else None,
            record.content if text else None,
        )

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
                record.prompt_vector,
            )

    def _finish_stream(
        self,
        record: CallRecord,
        message: dict[str, Any],
        status: str,
        error: str | None,
        http_status: int = 200,
    ) -> Awaitable[None] | None:
        record.tools_used = message["tool_calls"]
        if self.store_text:
            record.content = "".join(message["content"])
        if status == "ok":
            self._remember(record)
        else:  # cut short: cancelled, or broken after its first bytes
            _price_cut(record, message["chars"])
        return self._submit(
            record.finish(status=status, http_status=http_status, error=error, store_text=self.store_text),
            record,
        )

    def _failed(
        self, record: CallRecord, exc: TurnoutError, status: str = "error", error: str | None = None
    ) -> Failed:
        """The error for the caller, with its record's id and journal write."""
        durable = self._submit(
            record.finish(status=status, http_status=exc.status_code, error=error or exc.message),
            record,
            exc.code or exc.error_type,
        )
        return Failed(exc, record.message_id, durable)


def _price_cut(record: CallRecord, streamed_chars: int) -> None:
    """A call cut short after its upstream had the prompt (the client left, a command cancelled it,
    its stream broke) is priced, estimated, at its prompt and what had streamed: providers bill what
    they processed, and an unpriced cut let a client spend past its budget by disconnecting."""
    if record.usage is None and record.model is not None and record.attempts > 0:
        record.usage = cast(Usage, estimated_usage(record.call.body, streamed_chars))
        record.usage_estimated = True


def _native_or_chat(call: ChatCall, adapter: ChatAdapter, target: Target) -> UpstreamRequest:
    """The client's own body where the attempt's provider speaks its format, else the canonical one."""
    native = getattr(adapter, "native_request", None)
    if native is not None:
        request: UpstreamRequest | None = native(target, call.native, stream=call.stream)
        if request is not None:
            return request
    if call.native is not None and call.native.beyond is not None:  # translation would lose part of it
        raise call.native.beyond
    return adapter.chat_request(target, call.body, stream=call.stream)


def _broken(exc: BaseException) -> StreamBroken:
    """What a client is told of an upstream stream that broke after its first byte."""
    if isinstance(exc, ProviderError):
        return StreamBroken(exc.message, exc.error_type)
    return StreamBroken(f"upstream stream broke: {type(exc).__name__}")


async def _replayed(
    completion: Completion, durable: Awaitable[None] | None, streamed: Streamed
) -> AsyncGenerator[list[Chunk], None]:
    """A cached answer as a stream: its chunks, then (once its record is journaled) the end."""
    yield completion_chunks(completion)
    if durable is not None:
        await durable
    streamed.usage, streamed.finished = completion.get("usage"), True
    yield []


def _input_tokens(raw: bytes | None) -> int | None:
    """``input_tokens`` of a provider's token count, or None when it is not one."""
    try:
        obj = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    count = obj.get("input_tokens") if isinstance(obj, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def _parse_chat(adapter: ChatAdapter, target: Target, payload: bytes) -> Completion:
    return adapter.chat_response(target, payload)


def _parse_embeddings(adapter: ChatAdapter, target: Target, payload: bytes) -> EmbeddingsResponse:
    return adapter.embeddings_response(target, payload)


def _observe(record: CallRecord, chunk: Chunk, message: dict[str, Any]) -> None:
    usage = chunk.get("usage")
    if usage:
        record.usage = usage
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            record.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            message["content"].append(content)
            message["chars"] += len(content)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            if isinstance(name := function.get("name"), str) and name:
                message["tool_calls"].append(name)
            if isinstance(function.get("arguments"), str):
                message["chars"] += len(function["arguments"])


def _rate_headers(record: CallRecord) -> list[tuple[bytes, bytes]]:
    """The ``x-ratelimit-*`` headers of a call a rate limit covers (none otherwise)."""
    return rate_headers(record.hold.verdict) if record.hold is not None else []


def _as_float(cost: Decimal | None) -> float | None:
    """A record's exact cost as the float the answer's header and body show."""
    return None if cost is None else float(cost)
