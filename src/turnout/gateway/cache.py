"""The exact-match response cache: a call whose agent (or, failing a setting of the agent's, whose
routing policy) opted in is answered from an earlier identical call of the same tenant, without
calling any provider.

The key is the sha256 of the tenant and the normalised request (the model as the client named it,
``auto`` included; messages, tools, output format and sampling parameters; not ``stream``,
``stream_options``, ``metadata`` or ``user``), serialised canonically. A client body passed on
untouched (``ChatCall.native``) is part of the key too, since its canonical translation drops what
the canonical shapes have no room for. What is kept is the canonical completion: a hit is rendered
in the caller's dialect, whole or as a synthesised stream, like any answer.

Answers live in Redis when one is configured (shared by the replicas), else in the database's
``response_cache`` table; an in-process LRU sits in front of either. Both only ever hold a key's
answer until it expires, so the LRU never disagrees with the store. Reads happen only for calls the
cache applies to; writes go on in the background, never delaying an answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import orjson
import structlog
from redis.asyncio import Redis
from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.domain.policies import CacheRule
from turnout.domain.requests import ChatCall
from turnout.domain.snapshot import Snapshot
from turnout.store.dml import conflict_insert
from turnout.store.response_cache import ResponseCacheEntry
from turnout.store.sqlite.gate import engine_of, write_gate
from turnout.translate.types import Chunk, ChunkChoice, Completion, Delta, ToolCallDelta

log = structlog.get_logger(__name__)

# what of a canonical body goes into the key (besides the model and the tenant)
KEY_FIELDS = (
    "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format", "temperature",
    "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "task_type",
    "requirements",
)  # fmt: skip
NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")  # 0 and 0.0 are one key
NATIVE_LEFT_OUT = frozenset({"stream", "metadata"})
STORABLE = frozenset({"stop", "length", "tool_calls"})  # whole answers only
HIT: list[tuple[bytes, bytes]] = [(b"x-turnout-cache", b"hit")]
MISS: list[tuple[bytes, bytes]] = [(b"x-turnout-cache", b"miss")]
MAX_PENDING_WRITES = 1000  # beyond this, answers stay in the LRU only until writes catch up
PURGE_EVERY_S = 60.0


def rule_for(
    snapshot: Snapshot, tenant_id: str, agent_id: str | None, policy: str | None
) -> CacheRule | None:
    """The cache setting a call is under: its agent's when the agent has one, else that of the
    policy that routed it (``policy`` None: the caller named the model). None: not cached."""
    if agent_id is not None:
        agent = snapshot.agents.get((tenant_id, agent_id))
        if agent is not None and agent.response_cache is not None:
            return agent.response_cache if agent.response_cache.enabled else None
    if policy is None:
        return None
    view = snapshot.policies.get(policy)
    return view.cache if view is not None else None


@dataclass(slots=True)
class Storing:
    """A call the cache applies to: its key, and how long its answer is kept once it is whole."""

    key: str
    tenant_id: str
    ttl_s: int
    assembler: StreamAssembler | None = None  # a stream's answer, put together as it passes


def storing_for(tenant_id: str, call: ChatCall, rule: CacheRule) -> Storing | None:
    """The call's key under ``rule``; None for a sampled request the rule leaves out."""
    body: Mapping[str, Any] = call.body
    temperature = body.get("temperature")
    if not rule.include_sampled and (temperature is None or temperature > 0):
        return None
    return Storing(request_key(tenant_id, call), tenant_id, rule.ttl_s)


def request_key(tenant_id: str, call: ChatCall) -> str:
    """sha256 of the tenant and the normalised request, serialised with sorted keys."""
    body: Mapping[str, Any] = call.body
    parts: dict[str, Any] = {k: body[k] for k in KEY_FIELDS if k in body}
    for name in NUMBERS:
        value = parts.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            parts[name] = float(value)
    parts["model"] = body.get("model") or "auto"
    parts["tenant"] = tenant_id
    if call.native is not None:
        native = call.native
        parts["native"] = {
            "format": native.format.name,
            "body": {k: v for k, v in native.body.items() if k not in NATIVE_LEFT_OUT},
            "headers": dict(native.headers),
        }
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A cached canonical completion (its JSON) and the catalog model that answered it."""

    model_id: str
    payload: bytes
    expires_at: float  # epoch seconds

    def completion(self) -> Completion:
        """A fresh copy to render (renderers write into it)."""
        return cast(Completion, orjson.loads(self.payload))


class AnswerStore(Protocol):
    async def get(self, key: str, tenant_id: str) -> CachedAnswer | None: ...
    async def put(self, key: str, tenant_id: str, answer: CachedAnswer, ttl_s: int) -> None: ...


class RedisAnswers:
    """``<prefix>cache:<tenant>:<key>``, written with ``SET ... EX``: a header line (the model and
    the expiry, as JSON) and the completion's JSON."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}cache:"

    async def get(self, key: str, tenant_id: str) -> CachedAnswer | None:
        raw = await self._redis.get(f"{self._prefix}{tenant_id}:{key}")
        if not raw:
            return None
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        head, _, payload = data.partition(b"\n")
        model_id, expires_at = orjson.loads(head)
        return CachedAnswer(str(model_id), payload, float(expires_at))

    async def put(self, key: str, tenant_id: str, answer: CachedAnswer, ttl_s: int) -> None:
        head = orjson.dumps([answer.model_id, answer.expires_at])
        await self._redis.set(f"{self._prefix}{tenant_id}:{key}", head + b"\n" + answer.payload, ex=ttl_s)


class DatabaseAnswers:
    """The ``response_cache`` table: expired rows are ignored on read and purged by the first
    write after every ``purge_every_s``."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], purge_every_s: float = PURGE_EVERY_S
    ) -> None:
        self._sessions = sessions
        self._purge_every_s = purge_every_s
        engine = engine_of(sessions)
        self._dialect = engine.dialect.name if engine is not None else ""
        self._next_purge = 0.0

    async def get(self, key: str, tenant_id: str) -> CachedAnswer | None:
        entry = ResponseCacheEntry
        query = select(entry.model_id, entry.answer, entry.expires_at).where(
            entry.key == key, entry.tenant_id == tenant_id
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        if row is None:
            return None
        expires_at = row.expires_at.timestamp()
        if expires_at <= time.time():
            return None
        return CachedAnswer(row.model_id, orjson.dumps(row.answer), expires_at)

    async def put(self, key: str, tenant_id: str, answer: CachedAnswer, ttl_s: int) -> None:
        values = {
            "key": key,
            "tenant_id": tenant_id,
            "model_id": answer.model_id,
            "answer": orjson.Fragment(answer.payload),  # the engine's orjson serialiser writes it as is
            "expires_at": datetime.fromtimestamp(answer.expires_at, UTC),
            "created_at": datetime.now(UTC),
        }
        table = cast(Table, ResponseCacheEntry.__table__)
        stmt = conflict_insert(table, self._dialect).values(values)
        if isinstance(stmt, PgInsert | SqliteInsert):  # a key written again after it expired
            kept = {k: v for k, v in values.items() if k != "key"}
            stmt = stmt.on_conflict_do_update(index_elements=["key"], set_=kept)
        async with write_gate(self._sessions), self._sessions.begin() as session:
            await session.execute(stmt)
        now = time.monotonic()
        if now >= self._next_purge:
            self._next_purge = now + self._purge_every_s
            async with write_gate(self._sessions), self._sessions.begin() as session:
                await session.execute(delete(table).where(table.c.expires_at <= datetime.now(UTC)))


class MemoryLru:
    """Recently used answers, up to ``max_bytes`` of their JSON, dropped once they expire."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._bytes = 0
        self._items: OrderedDict[str, CachedAnswer] = OrderedDict()

    def get(self, key: str, now: float) -> CachedAnswer | None:
        found = self._items.get(key)
        if found is None:
            return None
        if found.expires_at <= now:
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return found

    def put(self, key: str, answer: CachedAnswer) -> None:
        size = _size(answer)
        if size > self._max:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = answer
        self._bytes += size
        while self._bytes > self._max:
            self._drop(next(iter(self._items)))

    def _drop(self, key: str) -> None:
        self._bytes -= _size(self._items.pop(key))


def _size(answer: CachedAnswer) -> int:
    return len(answer.payload) + len(answer.model_id) + 200


class ResponseCache:
    """Looks answers up (LRU, then the store) and keeps new ones (LRU at once, the store in the
    background). A store that fails is logged and reads as a miss: the cache never fails a call."""

    def __init__(self, store: AnswerStore, *, memory_bytes: int) -> None:
        self._store = store
        self._lru = MemoryLru(memory_bytes)
        self._writes: set[asyncio.Task[None]] = set()

    async def get(self, storing: Storing) -> CachedAnswer | None:
        now = time.time()
        found = self._lru.get(storing.key, now)
        if found is not None:
            return found
        try:
            found = await self._store.get(storing.key, storing.tenant_id)
        except Exception as exc:  # Redis or the database away: a miss
            log.warning("response_cache.read_failed", error_type=type(exc).__name__, error=str(exc)[:200])
            return None
        if found is None or found.expires_at <= now:
            return None
        self._lru.put(storing.key, found)
        return found

    def put(self, storing: Storing, model_id: str, completion: Mapping[str, Any]) -> None:
        """Keep a whole answer; serialised now, since the caller's renderer writes into it."""
        answer = CachedAnswer(model_id, orjson.dumps(completion), time.time() + storing.ttl_s)
        self._lru.put(storing.key, answer)
        if len(self._writes) >= MAX_PENDING_WRITES:
            return
        task = asyncio.create_task(self._write(storing, answer), name="response-cache-write")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, storing: Storing, answer: CachedAnswer) -> None:
        try:
            await self._store.put(storing.key, storing.tenant_id, answer, storing.ttl_s)
        except Exception as exc:
            log.warning("response_cache.write_failed", error_type=type(exc).__name__, error=str(exc)[:200])

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Wait (up to ``timeout_s``) for the writes in flight to reach the store."""
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=timeout_s)

    async def aclose(self) -> None:
        """Let the writes in flight finish before the store's connections close."""
        await self.flush()


def completion_chunks(completion: Completion) -> list[Chunk]:
    """A whole completion as the canonical chunks a provider's stream would have decoded to: the
    role, any reasoning, the text, each tool call, then the finish reason. The usage goes with
    the stream's end (``Streamed.usage``), as every dialect's encoder expects."""
    created = completion.get("created") or int(time.time())
    base = {"id": completion.get("id") or "", "object": "chat.completion.chunk", "created": created}
    base["model"] = completion.get("model") or ""
    choice = (completion.get("choices") or [{}])[0]
    message: Mapping[str, Any] = choice.get("message") or {}

    def chunk(delta: Delta, finish: str | None = None) -> Chunk:
        part: ChunkChoice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return cast(Chunk, {**base, "choices": [part]})

    out = [chunk({"role": "assistant", "content": ""})]
    for name in ("reasoning_content", "reasoning"):
        if isinstance(message.get(name), str) and message[name]:
            out.append(chunk(cast(Delta, {name: message[name]})))
    for name in ("content", "refusal"):
        if isinstance(message.get(name), str) and message[name]:
            out.append(chunk(cast(Delta, {name: message[name]})))
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        delta: ToolCallDelta = {"index": index, "id": call.get("id") or "", "type": "function"}
        delta["function"] = {"name": function.get("name") or "", "arguments": function.get("arguments") or ""}
        out.append(chunk({"tool_calls": [delta]}))
    out.append(chunk({}, choice.get("finish_reason") or "stop"))
    return out


class StreamAssembler:
    """Puts a streamed answer's chunks back together as a whole completion, to cache it."""

    __slots__ = ("_content", "_created", "_id", "_reasoning", "_refusal", "_tools")

    def __init__(self) -> None:
        self._id: str | None = None
        self._created: int | None = None
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._tools: dict[int, dict[str, Any]] = {}

    def feed(self, chunks: Iterable[Chunk]) -> None:
        for item in chunks:
            if self._id is None and item.get("id"):
                self._id, self._created = item.get("id"), item.get("created")
            for choice in item.get("choices") or ():
                delta: Mapping[str, Any] = choice.get("delta") or {}
                for name, into in (
                    ("content", self._content),
                    ("reasoning_content", self._reasoning),
                    ("reasoning", self._reasoning),
                    ("refusal", self._refusal),
                ):
                    text = delta.get(name)
                    if isinstance(text, str) and text:
                        into.append(text)
                for call in delta.get("tool_calls") or ():
                    self._tool(call)

    def _tool(self, call: Mapping[str, Any]) -> None:
        slot = self._tools.setdefault(
            call.get("index", len(self._tools)), {"id": "", "name": "", "arguments": []}
        )
        if call.get("id"):
            slot["id"] = call["id"]
        function = call.get("function") or {}
        if function.get("name"):
            slot["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            slot["arguments"].append(function["arguments"])

    def completion(self, model_id: str, finish_reason: str, usage: Mapping[str, Any] | None) -> Completion:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._content) or None}
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._refusal:
            message["refusal"] = "".join(self._refusal)
        if self._tools:
            message["tool_calls"] = [
                {
                    "id": slot["id"],
                    "type": "function",
                    "function": {"name": slot["name"], "arguments": "".join(slot["arguments"])},
                }
                for _, slot in sorted(self._tools.items())
            ]
        out: dict[str, Any] = {
            "id": self._id or "",
            "object": "chat.completion",
            "created": self._created or int(time.time()),
            "model": model_id,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        }
        if usage:
            out["usage"] = dict(usage)
        return cast(Completion, out)
