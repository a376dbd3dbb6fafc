"""Building the Message record of one call, and the cost of its usage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from turnout.auth.principal import Principal
from turnout.gateway.parse import ChatCall
from turnout.gateway.snapshot import ModelEntry
from turnout.store.models import utcnow


class RecordSink(Protocol):
    def submit(self, record: dict[str, Any]) -> None: ...


def cost_usd(model: ModelEntry | None, usage: dict[str, Any] | None) -> float | None:
    """Usage times catalog prices (USD per 1M tokens); None when either is unknown."""
    if model is None or not usage or model.pricing_input is None:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return (prompt * model.pricing_input + completion * (model.pricing_output or 0.0)) / 1_000_000


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
    fallback_used: bool = False
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    tools_used: list[str] = field(default_factory=list)
    content: str | None = None
    task_type: str | None = None
    agent_id: str | None = None
    decision: orjson.Fragment | None = None  # the routing decision's JSON
    detected_tools: list[str] = field(default_factory=list)

    def mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def finish(
        self, *, status: str, http_status: int, error: str | None = None, store_text: bool = False
    ) -> dict[str, Any]:
        now = time.perf_counter()
        meta = self.call.metadata
        usage = self.usage or {}
        return {
            "id": self.message_id,
            "conversation_id": meta.get("conversation_id"),
            "agent_id": self.agent_id or self.principal.agent_id,
            "tenant_id": self.principal.tenant_id,
            "user_id": meta.get("user_id") or self.principal.subject,
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
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "cost_usd": cost_usd(self.model, self.usage),
            "finish_reason": self.finish_reason,
            "task_type": self.task_type or self.call.task_type,
            "tools_used": list(dict.fromkeys([*self.detected_tools, *self.tools_used])),
            "attempts": self.attempts,
            "fallback_used": self.fallback_used,
            "prompt": _prompt_text(self.call.body) if store_text else None,
            "content": self.content if store_text else None,
            "metadata_": _metadata(meta, self.decision),
            "created_at": utcnow(),
        }


def _metadata(meta: dict[str, Any], decision: orjson.Fragment | None) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in meta.items() if k == "task_id"}
    if decision is not None:
        out["decision"] = decision
    return out


def _prompt_text(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        value = body.get("input")
        return value if isinstance(value, str) else None
    parts = [str(m["content"]) for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return "\n".join(parts) if parts else None


def tool_names(message: dict[str, Any] | None) -> list[str]:
    """Names of the tools an answer called."""
    if not message:
        return []
    calls = message.get("tool_calls") or []
    return [
        c["function"]["name"] for c in calls if isinstance(c, dict) and isinstance(c.get("function"), dict)
    ]
