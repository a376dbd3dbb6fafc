"""Anthropic Messages <-> the canonical model (OpenAI Chat Completions shapes): what both sides
of the gateway share. Responses both ways, usage, errors, and the field checks the request
translations use. The request translations themselves are split by direction:
:mod:`turnout.translate.anthropic_inbound` (an Anthropic-dialect client's request -> canonical)
and :mod:`turnout.translate.anthropic_outbound` (canonical -> an Anthropic provider's request).
Streams are in :mod:`turnout.translate.anthropic_stream`.

Usage: Anthropic's ``input_tokens`` excludes cache reads and writes; OpenAI's ``prompt_tokens``
includes them. Cache reads go to ``prompt_tokens_details.cached_tokens`` and cache writes to the
extension field ``prompt_tokens_details.cache_creation_tokens`` (priced differently), and
``output_tokens_details.thinking_tokens`` to ``completion_tokens_details.reasoning_tokens``, so the
two mappings below are inverse of each other.

Thinking: an Anthropic answer's ``thinking`` text reaches an OpenAI client as
``message.reasoning_content``; an OpenAI-compatible answer's ``reasoning_content`` (or ``reasoning``)
reaches an Anthropic client as a ``thinking`` block, with an empty signature.

Structured outputs: an OpenAI client's ``response_format`` reaches Claude as a tool it must call,
``FORMAT_TOOL``, whose input is the answer (the outbound translation); a call of it comes back as
the message's content, the JSON text, with ``finish_reason`` ``stop``, never as a tool call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.ids import new_hex
from turnout.translate import errors
from turnout.translate.errors import (
    MAX_MESSAGE_CHARS,
    ProviderError,
    is_retryable_status,
    openai_type_for_status,
    scrub,
)
from turnout.translate.types import (
    Completion,
    Message,
    ToolCall,
    Usage,
)

# -- responses, usage and errors -------------------------------------------------------------------


# the tool an OpenAI client's response_format becomes for Claude (reserved: a client's own tool
# may not take the name, so a call of it is always the answer)
FORMAT_TOOL = "turnout_response_format"
STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Anthropic error type -> (HTTP status seen by Turnout's clients, OpenAI error type).
_FROM_ANTHROPIC_TYPE = {
    "invalid_request_error": (400, "invalid_request_error"),
    "authentication_error": (401, "authentication_error"),
    "billing_error": (402, "insufficient_quota"),
    "permission_error": (403, "permission_error"),
    "not_found_error": (404, "not_found_error"),
    "request_too_large": (413, "invalid_request_error"),
    "rate_limit_error": (429, "rate_limit_error"),
    "api_error": (500, "api_error"),
    "timeout_error": (504, "api_error"),
    "overloaded_error": (503, "api_error"),
}
# OpenAI error types that are not Anthropic ones, for errors written to Anthropic-dialect clients.
_TO_ANTHROPIC_TYPE = {"server_error": "api_error", "insufficient_quota": "billing_error"}
_ANTHROPIC_TYPES = frozenset(_FROM_ANTHROPIC_TYPE)
_NOT_RETRYABLE_CODES = frozenset({"enforced_spend_limit_reached"})


def finish_reason(stop_reason: Any) -> str:
    """Anthropic ``stop_reason`` -> OpenAI ``finish_reason`` (unknown or null -> ``stop``)."""
    return STOP_TO_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _finish(stop: Any, answered: bool) -> str:
    """``finish_reason`` of an answer; ``answered``: it is the format tool's input, so it stopped."""
    return "stop" if answered and stop == "tool_use" else finish_reason(stop)


def stop_reason(finish: Any) -> str:
    """OpenAI ``finish_reason`` -> Anthropic ``stop_reason`` (unknown or null -> ``end_turn``)."""
    return FINISH_TO_STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _details(usage: Mapping[str, Any], name: str, field: str) -> int:
    details = usage.get(name)
    return _int(details.get(field)) if isinstance(details, Mapping) else 0


def openai_usage(usage: Any) -> Usage:
    """Anthropic ``usage`` -> OpenAI ``usage`` (prompt tokens include cache reads and writes; the
    thinking tokens, part of the output, are the reasoning tokens)."""
    usage = usage if isinstance(usage, Mapping) else {}
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + read + write
    completion = _int(usage.get("output_tokens"))
    out: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if read or write:
        out["prompt_tokens_details"] = {"cached_tokens": read, "cache_creation_tokens": write}
    thinking = _details(usage, "output_tokens_details", "thinking_tokens")
    if thinking:
        out["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return out


def anthropic_usage(usage: Any) -> dict[str, Any]:
    """OpenAI ``usage`` -> Anthropic ``usage`` (the inverse of ``openai_usage``)."""
    usage = usage if isinstance(usage, Mapping) else {}
    read = _details(usage, "prompt_tokens_details", "cached_tokens")
    write = _details(usage, "prompt_tokens_details", "cache_creation_tokens")
    out: dict[str, Any] = {
        "input_tokens": max(_int(usage.get("prompt_tokens")) - read - write, 0),
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    }
    reasoning = _details(usage, "completion_tokens_details", "reasoning_tokens")
    if reasoning:
        out["output_tokens_details"] = {"thinking_tokens": reasoning}
    return out


def malformed(what: str) -> ProviderError:
    """Anthropic answered 2xx with something that is not the expected JSON."""
    return errors.malformed(what, "Anthropic")


def tool_use(block: Mapping[str, Any], what: str) -> tuple[str, str]:
    """A ``tool_use`` block's (call id, tool name), whole or streamed: a name that is not text is a
    ``malformed`` ``what`` (a call of no tool: nothing a client could run); a missing id gets one."""
    name, call_id = block.get("name"), block.get("id")
    if not isinstance(name, str):
        raise malformed(what)
    return (call_id if isinstance(call_id, str) and call_id else f"toolu_{new_hex()}"), name


def anthropic_to_openai_response(payload: dict[str, Any], model: str) -> Completion:
    """Anthropic ``message`` -> canonical ``chat.completion`` (text joined, tool_use -> tool_calls)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("content"), list):
        raise malformed("message")
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    answered = False  # the format tool was called: the answer is its input
    for block in payload["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thoughts.append(block["thinking"])
        elif kind == "tool_use":
            arguments = block.get("input")
            call_id, name = tool_use(block, "message")
            if name == FORMAT_TOOL:
                texts.append(orjson.dumps(arguments if arguments is not None else {}).decode())
                answered = True
                continue
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": orjson.dumps(arguments if arguments is not None else {}).decode(),
                    },
                }
            )
    message: Message = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    return {
        "id": payload.get("id") or f"chatcmpl-{new_hex()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(payload.get("stop_reason"), answered and not calls),
            }
        ],
        "usage": openai_usage(payload.get("usage")),
    }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def tool_input(arguments: Any) -> dict[str, Any]:
    """Lenient parse of tool-call ``arguments`` for answers: a JSON object, ``{}`` when empty, and
    ``{"_raw": text}`` when the model wrote something that is not a JSON object."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def openai_to_anthropic_response(payload: Completion, model: str) -> dict[str, Any]:
    """Canonical ``chat.completion`` -> Anthropic ``message`` for an Anthropic-dialect client."""
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError("provider returned a completion without choices", status=502, retryable=True)
    choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text = _text_of(message.get("content"))
    refusal = message.get("refusal")
    blocks: list[dict[str, Any]] = []
    thinking = reasoning_text(message)
    if thinking:  # no signature: no Anthropic model wrote it
        blocks.append({"type": "thinking", "thinking": thinking, "signature": ""})
    if text:
        blocks.append({"type": "text", "text": text})
    elif isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls") or []
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{new_hex()}",
                "name": fn.get("name") or "",
                "input": tool_input(fn.get("arguments")),
            }
        )
    stop = stop_reason(choice.get("finish_reason"))
    if any(b["type"] == "tool_use" for b in blocks) and stop == "end_turn":
        stop = "tool_use"  # some servers say "stop" next to tool calls
    elif not text and isinstance(refusal, str) and refusal:
        stop = "refusal"
    return {
        "id": f"msg_{new_hex()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": anthropic_usage(payload.get("usage")),
    }


def reasoning_text(message: Mapping[str, Any]) -> str | None:
    """The thinking text of an OpenAI-shaped message or delta: ``reasoning_content`` (DeepSeek,
    vLLM, LiteLLM) or ``reasoning`` (OpenRouter, and Ollama's translation)."""
    text = message.get("reasoning_content")
    if isinstance(text, str) and text:
        return text
    text = message.get("reasoning")
    return text if isinstance(text, str) and text else None


def anthropic_error_type(status: int, openai_type: str | None = None) -> str:
    """The Anthropic error ``type`` for an HTTP status (or an OpenAI error type when it has one)."""
    if openai_type in _ANTHROPIC_TYPES:
        return openai_type
    if openai_type in _TO_ANTHROPIC_TYPE:
        return _TO_ANTHROPIC_TYPE[openai_type]
    found = ANTHROPIC_ERROR_TYPES.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """An error body in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``."""
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}


def anthropic_provider_error(
    status: int | None,
    error: Any,
    *,
    secrets: tuple[str, ...] = (),
    retry_after_s: float | None = None,
) -> ProviderError:
    """An Anthropic ``error`` object (from a body or a stream event) -> ProviderError.

    ``status`` None (a stream event): taken from the error type. 529 becomes 503 (a status OpenAI
    clients know); 408, 409, 429 and 5xx are retryable, except a reached spend limit.
    """
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    message = scrub(str(message or ""), *secrets)[:MAX_MESSAGE_CHARS]
    mapped = _FROM_ANTHROPIC_TYPE.get(kind) if isinstance(kind, str) else None
    if status is None:
        status = mapped[0] if mapped else 502
    if status == 529:
        status = 503
    details = error.get("details") if isinstance(error, dict) else None
    detail_code = details.get("error_code") if isinstance(details, dict) else None
    detail_code = detail_code if isinstance(detail_code, str) else None  # a set member must hash
    retryable = (is_retryable_status(status) or status == 409) and detail_code not in _NOT_RETRYABLE_CODES
    return ProviderError(
        message or f"Anthropic returned HTTP {status}",
        status=status,
        error_type=mapped[1] if mapped else openai_type_for_status(status),
        code=kind if isinstance(kind, str) and kind else None,
        retryable=retryable,
        retry_after_s=retry_after_s if retryable else None,
    )
