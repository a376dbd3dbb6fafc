"""Google Gemini's ``generateContent`` API <-> the canonical model (OpenAI Chat Completions shapes):
answers, usage, embeddings and errors. Requests are built in :mod:`turnout.translate.gemini_outbound`,
streams read in :mod:`turnout.translate.gemini_stream`.

Answers: Gemini gives tool calls no ids, so ``call_`` ids are generated. Usage: Gemini's
``promptTokenCount`` already includes the cached prompt (``cachedContentTokenCount``), while its
``candidatesTokenCount`` leaves out the thinking (``thoughtsTokenCount``), which is billed as output;
so ``completion_tokens`` adds the two and ``reasoning_tokens`` names the thinking part, as OpenAI
counts them. Errors: ``{"error": {"code", "message", "status", "details"}}``, where ``details`` may
say why (``ErrorInfo.reason``) and how long to wait (``RetryInfo.retryDelay``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, cast

import orjson

from turnout.ids import new_hex
from turnout.translate import errors
from turnout.translate.canonical_read import fail, is_int
from turnout.translate.errors import (
    MAX_MESSAGE_CHARS,
    ProviderError,
    is_retryable_status,
    openai_type_for_status,
    scrub,
)
from turnout.translate.types import (
    Choice,
    Completion,
    EmbeddingsRequest,
    EmbeddingsResponse,
    Message,
    ToolCall,
    Usage,
)

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}
# google.rpc status name -> HTTP status, for errors met without one (inside a 200 body or a stream)
_STATUSES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# ErrorInfo reasons that mean the credential, whatever HTTP status Gemini gave them (a bad key is a 400)
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED"})
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def malformed(what: str) -> ProviderError:
    """Gemini answered 2xx with something that is not the expected JSON."""
    return errors.malformed(what, "Gemini")


# -- answers ---------------------------------------------------------------------------------------


def finish_reason(reason: Any, tool_calls: bool) -> str:
    """Gemini ``finishReason`` -> OpenAI ``finish_reason`` (``tool_calls`` when the turn called
    tools and stopped normally; unknown ones, such as ``OTHER``, -> ``stop``)."""
    mapped = _FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if tool_calls and mapped == "stop" else mapped


def _count(value: Any) -> int:
    return value if is_int(value) and value > 0 else 0


def openai_usage(meta: Any) -> Usage:
    """Gemini ``usageMetadata`` -> OpenAI ``usage`` (see the module docstring)."""
    meta = meta if isinstance(meta, Mapping) else {}
    prompt = _count(meta.get("promptTokenCount")) + _count(meta.get("toolUsePromptTokenCount"))
    thoughts = _count(meta.get("thoughtsTokenCount"))
    completion = _count(meta.get("candidatesTokenCount")) + thoughts
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = _count(meta.get("cachedContentTokenCount"))
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return cast(Usage, out)


def new_call_id() -> str:
    """An id for a tool call (Gemini names none)."""
    return f"call_{new_hex()[:24]}"


def tool_call(call: Mapping[str, Any]) -> ToolCall:
    """A ``functionCall`` -> an OpenAI tool call (its own ``id`` when Gemini gave one)."""
    args, given, name = call.get("args"), call.get("id"), call.get("name")
    return {
        "id": given if isinstance(given, str) and given else new_call_id(),
        "type": "function",
        "function": {
            "name": name if isinstance(name, str) else "",
            "arguments": orjson.dumps(args if isinstance(args, dict) else {}).decode(),
        },
    }


def candidate_parts(candidate: Any) -> tuple[list[str], list[str], list[ToolCall]]:
    """(answer texts, thought texts, tool calls) of one candidate, in order."""
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str) and text:
            (thoughts if part.get("thought") is True else texts).append(text)
        call = part.get("functionCall")
        if isinstance(call, dict):
            calls.append(tool_call(call))
    return texts, thoughts, calls


def blocked_message(feedback: Any) -> str | None:
    """Why Gemini refused the prompt itself (``promptFeedback.blockReason``), or None."""
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    return f"Gemini blocked the prompt ({reason})" if isinstance(reason, str) and reason else None


def completion(payload: bytes, model_id: str, secrets: tuple[str, ...] = ()) -> Completion:
    """A ``GenerateContentResponse`` -> ``chat.completion`` (``model`` = the catalog id), one choice
    per candidate; a blocked prompt is an empty answer with ``finish_reason: content_filter``."""
    obj = errors.load_object(payload, "generateContent answer")
    if "error" in obj:
        raise gemini_error(None, obj["error"], secrets=secrets)
    candidates = obj.get("candidates")
    if candidates is not None and not isinstance(candidates, list):
        raise malformed("generateContent answer")
    choices: list[Choice] = []
    for position, candidate in enumerate(candidates or ()):
        if not isinstance(candidate, dict):
            raise malformed("candidate")
        texts, thoughts, calls = candidate_parts(candidate)
        message: Message = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        if thoughts:
            message["reasoning"] = "".join(thoughts)
        index = candidate.get("index")
        choices.append(
            {
                "index": index if is_int(index) else position,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
            }
        )
    if not choices:
        refusal = blocked_message(obj.get("promptFeedback"))
        if refusal is None:
            raise malformed("generateContent answer (no candidates)")
        empty: Message = {"role": "assistant", "content": "", "refusal": refusal}
        choices.append({"index": 0, "message": empty, "logprobs": None, "finish_reason": "content_filter"})
    choices.sort(key=lambda c: c.get("index", 0))
    return {
        "id": f"chatcmpl-{new_hex()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": choices,
        "usage": openai_usage(obj.get("usageMetadata")),
    }


# -- embeddings ------------------------------------------------------------------------------------


def embed_request(body: EmbeddingsRequest, model_name: str) -> dict[str, Any]:
    """Canonical embeddings body -> ``batchEmbedContents`` body for ``model_name``
    (``models/<id>``); text input only, a 400 otherwise."""
    value = body.get("input")
    inputs = [value] if isinstance(value, str) else value
    if not isinstance(inputs, list) or not inputs or not all(isinstance(v, str) for v in inputs):
        fail("Gemini embeddings take text input (a string or an array of strings)", "input")
    dimensions = body.get("dimensions")
    requests = []
    for text in inputs:
        request: dict[str, Any] = {"model": model_name, "content": {"parts": [{"text": text}]}}
        if is_int(dimensions) and dimensions > 0:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def embeddings(payload: bytes, model_id: str, secrets: tuple[str, ...] = ()) -> EmbeddingsResponse:
    """``{"embeddings": [{"values": [...]}]}`` -> OpenAI embeddings list. Gemini reports no token
    counts here; ``usageMetadata`` is read when an answer has it, else usage is 0."""
    obj = errors.load_object(payload, "batchEmbedContents answer")
    if "error" in obj:
        raise gemini_error(None, obj["error"], secrets=secrets)
    vectors = obj.get("embeddings")
    if not isinstance(vectors, list):
        raise malformed("batchEmbedContents answer")
    data = []
    for i, item in enumerate(vectors):
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise malformed("embedding")
        data.append({"object": "embedding", "index": i, "embedding": values})
    meta = obj.get("usageMetadata")
    tokens = _count(meta.get("promptTokenCount")) if isinstance(meta, dict) else 0
    return cast(
        EmbeddingsResponse,
        {
            "object": "list",
            "data": data,
            "model": model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


# -- errors ----------------------------------------------------------------------------------------


def error_object(payload: bytes) -> Any:
    """The ``error`` object of a Gemini error body (also inside the JSON array that a stream
    without ``alt=sse`` answers), or the body's text when it is not one."""
    try:
        obj = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if isinstance(obj, dict):
        error = obj.get("error")
        if isinstance(error, dict):
            return error
        if isinstance(error, str):
            return {"message": error}
        if isinstance(obj.get("message"), str):
            return obj
    return payload.decode("utf-8", "replace").strip() if payload else ""


def _details(error: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    details = error.get("details")
    return [
        d
        for d in (details if isinstance(details, list) else ())
        if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)
    ]


def _retry_delay(error: Mapping[str, Any]) -> float | None:
    """``RetryInfo.retryDelay`` (a duration such as ``"27s"``), which Gemini sends instead of Retry-After."""
    for detail in _details(error, "google.rpc.RetryInfo"):
        match = _DURATION.match(str(detail.get("retryDelay", "")))
        if match is not None:
            return float(match.group(1))
    return None


def gemini_error(
    status: int | None,
    error: Any,
    *,
    secrets: tuple[str, ...] = (),
    retry_after_s: float | None = None,
) -> ProviderError:
    """A Gemini ``error`` object (``{"code", "message", "status", "details"}``) -> ProviderError.

    ``status`` None (an error inside a 200 body or a stream): taken from ``code``, else from the
    ``status`` name. A rejected API key (Gemini answers 400 ``API_KEY_INVALID``) becomes a 401. The
    wait comes from ``retry_after_s`` (a ``Retry-After`` header), else from ``RetryInfo``."""
    error = error if isinstance(error, dict) else {"message": str(error or "")}
    name = error.get("status") if isinstance(error.get("status"), str) else None
    if status is None:
        code = error.get("code")
        status = code if is_int(code) and 400 <= code <= 599 else _STATUSES.get(name or "", 502)
    reasons = [d.get("reason") for d in _details(error, "google.rpc.ErrorInfo")]
    reason = next((r for r in reasons if isinstance(r, str) and r), None)
    if reason in _AUTH_REASONS:
        status = 401
    message = scrub(str(error.get("message") or ""), *secrets)[:MAX_MESSAGE_CHARS]
    retryable = is_retryable_status(status)
    if retryable and retry_after_s is None:
        retry_after_s = _retry_delay(error)
    code_name = reason or name
    return ProviderError(
        message or f"Gemini returned HTTP {status}",
        status=status,
        error_type=openai_type_for_status(status),
        code=code_name.lower() if code_name else None,
        retryable=retryable,
        retry_after_s=retry_after_s if retryable else None,
    )
