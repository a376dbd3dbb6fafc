"""Anthropic wire format: ``POST /v1/messages`` (JSON and SSE events), ``POST
/v1/messages/count_tokens``, ``GET /v1/models``; errors as ``{"type": "error", "error": {"type",
"message"}, "request_id"}``. Like the real API, requests need ``anthropic-version`` and
``max_tokens``; extended thinking (signed, and checked when replayed) and prompt caching behave as
:mod:`.anthropic_extended` describes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator import anthropic_extended as extended
from turnout.simulator import text
from turnout.simulator.config import DEFAULT_ANTHROPIC_MODELS
from turnout.simulator.respond import (
    JSON_HEADERS,
    Plan,
    begin,
    format_seconds,
    json_response,
    random_id,
    read_json,
    send_body,
    send_stream,
)

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_MESSAGES = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of requests has exceeded your rate limit.",
    500: "Internal server error",
    529: "Overloaded",
}


# The Messages API's top-level fields; Anthropic refuses any other ("Extra inputs are not permitted")
COUNT_FIELDS = frozenset(
    {
        "model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
        "context_management", "output_config", "output_format",
    }
)  # fmt: skip
MESSAGES_FIELDS = COUNT_FIELDS | {
    "max_tokens", "metadata", "stop_sequences", "stream", "temperature", "top_k", "top_p",
    "service_tier", "container", "inference_geo",
}  # fmt: skip


def anthropic_error(
    status: int, message: str | None = None, retry_after: float | None = None, *, etype: str | None = None
) -> web.Response:
    """An error in Anthropic's shape; 429 carries ``retry-after`` and ``anthropic-ratelimit-*``."""
    request_id = random_id("req_011C", 20)
    headers = {"Content-Type": "application/json", "request-id": request_id}
    if status == 429 or retry_after is not None:
        wait = 1.0 if retry_after is None else retry_after
        headers["retry-after"] = format_seconds(wait)
        if status == 429:
            reset = (datetime.now(UTC) + timedelta(seconds=wait)).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers["anthropic-ratelimit-requests-limit"] = "50"
            headers["anthropic-ratelimit-requests-remaining"] = "0"
            headers["anthropic-ratelimit-requests-reset"] = reset
    etype = etype or _TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    message = message or _MESSAGES.get(status, f"Simulated error (HTTP {status}).")
    body = {"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers)


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _pick_tool(body: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
    """The tool to use: tools given, ``tool_choice`` not none, the last turn a user's (not a tool result)."""
    tools, choice = body.get("tools"), body.get("tool_choice")
    last = messages[-1]
    if not isinstance(tools, list) or not tools or not isinstance(last, dict) or last.get("role") != "user":
        return None
    if isinstance(choice, dict) and choice.get("type") == "none":
        return None
    content = last.get("content")
    if isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    ):
        return None
    named = [t for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
    if isinstance(choice, dict) and choice.get("type") == "tool":
        named = [t for t in named if t["name"] == choice.get("name")] or named
    return named[0] if named else None


class AnthropicRoutes:
    """The Anthropic routes of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.cache = extended.PromptCache()

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes (``GET /v1/models`` is dispatched by the server)."""
        router.add_post("/v1/messages", self.messages)
        router.add_post("/v1/messages/count_tokens", self.count_tokens)

    def models(self) -> tuple[str, ...]:
        """The model ids listed."""
        return self.sim.config.model_list(DEFAULT_ANTHROPIC_MODELS)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = self.sim.config.api_key
        if key is not None:
            given = request.headers.get("x-api-key")
            if given is None:  # newer SDKs send the key as a bearer token
                header = request.headers.get("Authorization", "")
                given = header[7:].strip() if header[:7].lower() == "bearer " else None
            if not given:
                return anthropic_error(401, "x-api-key header is required")
            if not secrets.compare_digest(given.encode(), key.encode()):
                return anthropic_error(401, "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return anthropic_error(400, "anthropic-version: header is required")
        return None

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models`` (``limit``, ``after_id``, ``before_id`` like the real one)."""
        self.sim.hit("anthropic", "GET /v1/models")
        if (denied := self._auth(request)) is not None:
            return denied
        plan = await begin(self.sim, request, None, anthropic_error)
        if not isinstance(plan, Plan):
            return plan
        ids = list(self.models())
        try:
            limit = min(1000, max(1, int(request.query.get("limit", "20"))))
        except ValueError:
            return anthropic_error(400, "limit: Input should be a valid integer")
        after, before = request.query.get("after_id"), request.query.get("before_id")
        if after in ids:
            ids = ids[ids.index(after) + 1 :]
        elif before in ids:
            ids = ids[: ids.index(before)][-limit:]
        page = ids[:limit]
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"} for m in page
        ]
        answer = {
            "data": data,
            "has_more": len(ids) > limit,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
        return await send_body(request, plan, orjson.dumps(answer), JSON_HEADERS)

    def _validate(self, body: Any, need_max_tokens: bool) -> web.Response | None:
        if not isinstance(body, dict):
            return anthropic_error(400, "There was an issue with your request body: invalid JSON.")
        known = MESSAGES_FIELDS if need_max_tokens else COUNT_FIELDS
        for name in body:
            if name not in known:  # as Anthropic answers a field it does not know (an OpenAI one, say)
                return anthropic_error(400, f"{name}: Extra inputs are not permitted")
        for name in ("model", "messages", *(("max_tokens",) if need_max_tokens else ())):
            if name not in body:
                return anthropic_error(400, f"{name}: Field required")
        if not isinstance(body["model"], str) or not body["model"]:
            return anthropic_error(400, "model: Input should be a valid string")
        max_tokens = body.get("max_tokens")
        if need_max_tokens and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            return anthropic_error(400, "max_tokens: Input should be an integer greater than or equal to 1")
        if not isinstance(body["messages"], list) or not body["messages"]:
            return anthropic_error(400, "messages: at least one message is required")
        if self.sim.config.strict_models and body["model"] not in self.models():
            return anthropic_error(404, f"model: {body['model']}")
        return None

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": n}``, one token per four characters
        of the tools, the system prompt and the messages (what ``/v1/messages`` reports)."""
        self.sim.hit("anthropic", "POST /v1/messages/count_tokens")
        if (denied := self._auth(request)) is not None:
            return denied
        body = await read_json(request)
        if (invalid := self._validate(body, need_max_tokens=False)) is not None:
            return invalid
        self.sim.record("anthropic", request, body["model"], body, False, await request.read())
        try:
            parts = extended.segments(body)
        except extended.Refused as exc:
            return anthropic_error(400, str(exc))
        return json_response({"input_tokens": extended.prompt_tokens(parts)})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/messages``."""
        sim = self.sim
        sim.hit("anthropic", "POST /v1/messages")
        if (denied := self._auth(request)) is not None:
            return denied
        body = await read_json(request)
        if (invalid := self._validate(body, need_max_tokens=True)) is not None:
            return invalid
        model, messages, stream = body["model"], body["messages"], body.get("stream") is True
        sim.record("anthropic", request, model, body, stream, await request.read())  # read() is cached
        try:  # recorded first: a test sees what a refused request carried
            thinks = extended.thinking_wanted(body)
            extended.check_replayed_thinking(messages)
            parts = extended.segments(body)
            cached = self.cache.usage(model, parts)
        except extended.Refused as exc:
            return anthropic_error(400, str(exc))
        plan = await begin(sim, request, model, anthropic_error)
        if not isinstance(plan, Plan):
            return plan
        prompt = text.last_user_text(messages)
        tool = _pick_tool(body, messages)
        blocks: list[tuple[dict[str, Any], tuple[str, ...]]] = []
        room = body["max_tokens"]
        if thinks:
            thought = extended.thought_about(prompt)
            thinking_pieces = text.text_pieces(thought, 0, thought)
            room -= len(thinking_pieces)
            if extended.REDACTED_TRIGGER in prompt:
                data = extended.redacted_data(thought)
                blocks.append(({"type": "redacted_thinking", "data": data}, ()))
            else:
                signed = {"type": "thinking", "thinking": thought, "signature": extended.signature(thought)}
                blocks.append((signed, thinking_pieces))
        block: dict[str, Any]
        if tool is not None:
            arguments = text.tool_arguments(tool.get("input_schema"), prompt)
            block = {
                "type": "tool_use",
                "id": random_id("toolu_01", 22),
                "name": tool["name"],
                "input": arguments,
            }
            pieces = text.split_pieces(orjson.dumps(arguments).decode(), 8)
            output_tokens, stop_reason = max(1, (len("".join(pieces)) + 3) // 4), "tool_use"
        else:
            config = sim.config
            pieces = text.text_pieces(prompt, config.reply_tokens, config.reply_text)
            stop_reason = "end_turn"
            if room < len(pieces):
                pieces, stop_reason = pieces[: max(room, 0)], "max_tokens"
            block = {"type": "text", "text": "".join(pieces)}
            output_tokens = len(pieces)
        blocks.append((block, pieces))
        usage: dict[str, Any] = {
            "input_tokens": extended.prompt_tokens(parts),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }
        if cached is not None:
            usage.update(cached)
        if thinks:
            thinking_tokens = body["max_tokens"] - room
            usage["output_tokens"] += thinking_tokens
            usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
        message: dict[str, Any] = {
            "id": random_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [b for b, _ in blocks],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        headers = {"request-id": random_id("req_011C", 20)}
        if stream:
            chunks = _events(message, blocks)
            return await send_stream(request, plan, chunks, {**SSE_HEADERS, **headers})
        headers["Content-Type"] = "application/json"
        return await send_body(request, plan, orjson.dumps(message), headers, usage["output_tokens"])


def _block_events(index: int, block: dict[str, Any], pieces: tuple[str, ...]) -> tuple[bytes, list[bytes]]:
    """A content block's ``content_block_start`` and the delta events that fill it in."""
    kind = block["type"]
    if kind == "text":
        opening: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
    elif kind == "thinking":  # the signature comes last, just before the block stops
        opening = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in pieces]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        opening = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ("", *pieces)]
    else:  # redacted_thinking: whole in its start
        opening, deltas = block, []
    start = {"type": "content_block_start", "index": index, "content_block": opening}
    return _event(b"content_block_start", start), [
        _event(b"content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]


def _events(message: dict[str, Any], blocks: list[tuple[dict[str, Any], tuple[str, ...]]]) -> list[bytes]:
    """message_start, per block content_block_start, deltas and content_block_stop (a ping after the
    first start), message_delta, message_stop."""
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    out = [_event(b"message_start", {"type": "message_start", "message": start})]
    for index, (block, pieces) in enumerate(blocks):
        opening, deltas = _block_events(index, block, pieces)
        out.append(opening)
        if index == 0:
            out.append(_event(b"ping", {"type": "ping"}))
        out.extend(deltas)
        out.append(_event(b"content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    out.append(
        _event(
            b"message_delta",
            {"type": "message_delta", "delta": stop, "usage": {"output_tokens": usage["output_tokens"]}},
        )
    )
    out.append(_event(b"message_stop", {"type": "message_stop"}))
    return out
