"""Building the Message record of one call (its cost from ``turnout.domain.pricing``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson

from turnout.auth.principal import Principal
from turnout.domain.pricing import TokenCounts, cost_of, token_count
from turnout.domain.requests import ChatCall
from turnout.domain.snapshot import ModelEntry
from turnout.spend.guard import Held
from turnout.store.models import utcnow

ZERO = Decimal(0)


class RecordSink(Protocol):
    def submit(self, record: dict[str, Any]) -> Awaitable[None] | None:
        """Take a record; what to await before the answer's last byte (None: nothing)."""
        ...


@dataclass(slots=True)
class CallRecord:
    """Accumulates what one request did; ``finish`` turns it into a Message row."""

    message_id: str
    principal: Principal
    call: ChatCall
    dialect: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    model: ModelEntry | None = None
    attempts: int = 0
    models_tried: int = 0  # distinct models the attempts went to
    fallback_used: bool = False
    usage: Mapping[str, Any] | None = None
    usage_estimated: bool = False  # the provider reported none: turnout.tokens estimated it
    finish_reason: str | None = None
    tools_used: list[str] = field(default_factory=list)
    content: str | None = None
    task_type: str | None = None
    agent_id: str | None = None
    decision: orjson.Fragment | None = None  # the routing decision's JSON
    detected_tools: list[str] = field(default_factory=list)
    policy: str | None = None  # the routing policy that ranked the models (None: the caller named one)
    hold: Held | None = None  # what the call holds on budgets and rate limits until it is settled
    cache_hit: bool = False  # answered from the response cache: no provider called, nothing to pay
    prompt_vector: bytes | None = None  # the prompt's features, when the prompt memory routed it

    def mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def finish(
        self, *, status: str, http_status: int, error: str | None = None, store_text: bool = False
    ) -> dict[str, Any]:
        now = time.perf_counter()
        meta = self.call.metadata
        usage = self.usage or {}
        tokens = TokenCounts.of(usage)
        cost = (
            cost_of(self.model, tokens, usage_estimated=self.usage_estimated)
            if usage and not self.cache_hit
            else None
        )
        return {
            "id": self.message_id,
            "conversation_id": meta.get("conversation_id"),
            "agent_id": self.agent_id or self.principal.agent_id,
            "tenant_id": self.principal.tenant_id,
            "user_id": meta.get("user_id"),  # what the caller said: anyone may say anything
            "subject": self.principal.subject,  # who authenticated (``agent:<id>`` or the JWT's sub)
            "role": "assistant",
            "model": self.model.id if self.model else None,
            "provider": self.model.provider_id if self.model else None,
            "dialect": self.dialect,
            "endpoint": self.endpoint,
            "stream": self.call.stream,
            "status": status,
            "http_status": http_status,
            "error": error[:1000] if error else None,
            "latency_ms": int((now - self.started) * 1000),
            "ttft_ms": int((self.first_token_at - self.started) * 1000) if self.first_token_at else None,
            "prompt_tokens": token_count(usage.get("prompt_tokens")),  # as priced: a count, or none
            "completion_tokens": token_count(usage.get("completion_tokens")),
            "usage_estimated": self.usage_estimated,
            "cached_tokens": tokens.cached if usage else None,
            "cache_write_tokens": tokens.cache_write if usage else None,
            "reasoning_tokens": tokens.reasoning if usage else None,
            "cost_usd": ZERO if self.cache_hit else cost and cost.usd,
            "cost_estimated": bool(cost and cost.estimated),
            "api_key_id": self.principal.key_id,
            "policy": self.policy,
            "finish_reason": self.finish_reason,
            "task_type": self.task_type or self.call.task_type,
            "tools_used": list(dict.fromkeys([*self.detected_tools, *self.tools_used])),
            "attempts": self.attempts,
            "fallback_used": self.fallback_used,
            "cache_hit": self.cache_hit,
            "prompt": _prompt_text(self.call.body) if store_text else None,
            "content": self.content if store_text else None,
            "metadata_": _metadata(meta, self.decision, self.models_tried, self.call.client_request_id),
            "created_at": utcnow(),
        }


def _metadata(
    meta: dict[str, Any], decision: orjson.Fragment | None, models_tried: int, client_request_id: str | None
) -> dict[str, Any]:
    """What the record keeps of the caller's metadata (its task and project, and its own id of the
    call), the routing decision and, when the attempts went to more than one model, how many (a
    fallback was attempted)."""
    out: dict[str, Any] = {k: v for k, v in meta.items() if k in ("task_id", "project_id")}
    if client_request_id is not None:
        out["client_request_id"] = client_request_id
    if decision is not None:
        out["decision"] = decision
    if models_tried > 1:
        out["models_tried"] = models_tried
    return out


def _prompt_text(body: Mapping[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        value = body.get("input")
        return value if isinstance(value, str) else None
    parts = [str(m["content"]) for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return "\n".join(parts) if parts else None


def tool_names(message: Mapping[str, Any] | None) -> list[str]:
    """Names of the tools an answer called."""
    if not message:
        return []
    calls = message.get("tool_calls") or []
    functions = [c.get("function") for c in calls if isinstance(c, dict)]
    return [f["name"] for f in functions if isinstance(f, dict) and isinstance(f.get("name"), str)]
