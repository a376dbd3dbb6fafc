"""The OpenAI Responses API (``/v1/responses``) <-> the canonical Chat Completions shapes.

Inbound, a Responses body (``instructions``, ``input`` items, function ``tools``, ``tool_choice``,
``text.format``, ``reasoning.effort``, ``max_output_tokens``) becomes a canonical chat body after
the conversation so far (the items a ``previous_response_id`` chain left). Outbound, a canonical
``chat.completion`` becomes a ``response`` object, and a stream of canonical chunks becomes the
Responses API's typed events (:class:`ResponsesStreamEncoder`).

Tools the gateway cannot run on the caller's behalf (``web_search``, ``file_search``, computer use,
MCP, ...) and items it cannot translate (``item_reference``, files) are refused with a 400 naming
the field, before anything is sent upstream. ``reasoning`` items given back as input are dropped:
their encrypted content only means something to the model that wrote it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from turnout.errors import InvalidRequest
from turnout.ids import new_hex
from turnout.translate.types import (
    ChatRequest,
    Chunk,
    Completion,
    ContentPart,
    Message,
    Tool,
    ToolCall,
    Usage,
)

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
#: Turnout's own request fields, accepted here as in the chat dialect
EXTENSIONS = ("fallbacks", "task_type", "requirements")
#: fields a caller may send that change nothing Turnout does (kept in the echo where OpenAI echoes them)
_IGNORED = frozenset(
    {
        "include",
        "truncation",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "top_logprobs",
        "max_tool_calls",
        "prompt_cache_retention",
        "stream_options",
    }
)
_REFUSED = {
    "background": "background responses are not supported",
    "conversation": "conversations are not supported; chain responses with previous_response_id",
    "prompt": "stored prompts are not supported",
}


def _fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def response_id_for(message_id: str) -> str:
    """The response id of the call recorded as ``message_id`` (a UUID): ``resp_`` + its hex, so
    the record, feedback and decision log are found from the id the client holds."""
    return "resp_" + message_id.replace("-", "")


def message_id_for(response_id: str) -> str | None:
    """The message id behind a response id made by :func:`response_id_for` (None: not one)."""
    hex_ = response_id[5:] if response_id.startswith("resp_") else ""
    if len(hex_) != 32 or not all(c in "0123456789abcdef" for c in hex_):
        return None
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


@dataclass(slots=True)
class ResponsesRequest:
    """A validated Responses body: the canonical chat body to send, the input items as stored and
    listed (each with an id), and what the answer echoes back."""

    chat: ChatRequest
    input_items: list[dict[str, Any]]
    previous_response_id: str | None
    store: bool
    stream: bool
    echo: dict[str, Any] = field(default_factory=dict)
    #: the conversation's items so far with this turn's input (instructions left out: they are per
    #: turn); kept as Responses items, so it can be replayed to a provider speaking them natively
    conversation: list[dict[str, Any]] = field(default_factory=list)


def _text_parts(content: Any, where: str, *, assistant: bool) -> str | list[ContentPart]:
    """A message item's content as canonical content: a string, or text and image parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _fail("must be a string or an array of content parts", where)
    parts: list[ContentPart] = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise _fail("text must be a string", f"{here}.text")
            parts.append({"type": "text", "text": text})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image" and not assistant:
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise _fail("image_url is required (file_id images are not supported)", f"{here}.image_url")
            image: dict[str, str] = {"url": url}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})  # type: ignore[typeddict-item]
        elif kind == "input_file":
            raise _fail("file inputs are not supported", f"{here}.type")
        else:
            raise _fail(f"content part type {kind!r} is not supported", f"{here}.type")
    if assistant or all(p["type"] == "text" for p in parts):
        return "".join(cast(str, p.get("text", "")) for p in parts) if assistant else parts
    return parts


def _stored_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An input item as ``input_items`` lists it: with an id, a message's content as parts."""
    out = dict(item)
    kind = out.setdefault("type", "message")
    if kind == "message":
        out.setdefault("id", "msg_" + new_hex())
        content = out.get("content")
        if isinstance(content, str):
            part = "output_text" if out.get("role") == "assistant" else "input_text"
            out["content"] = [{"type": part, "text": content}]
        out.setdefault("status", "completed")
    elif kind == "function_call":
        out.setdefault("id", "fc_" + new_hex())
        out.setdefault("status", "completed")
    elif kind == "function_call_output":
        out.setdefault("id", "fco_" + new_hex())
        out.setdefault("status", "completed")
    return out


def input_messages(items: list[dict[str, Any]]) -> list[Message]:
    """Input items -> canonical messages: consecutive ``function_call`` items join one assistant
    turn, a ``function_call_output`` is a ``tool`` message, ``reasoning`` items are dropped."""
    messages: list[Message] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if not isinstance(role, str) or role not in _MESSAGE_ROLES:  # a list or object is unhashable
                raise _fail(f"role must be one of {sorted(_MESSAGE_ROLES)}", f"{where}.role")
            content = _text_parts(item.get("content"), f"{where}.content", assistant=role == "assistant")
            messages.append({"role": role, "content": content})
        elif kind == "function_call":
            name, call_id, arguments = item.get("name"), item.get("call_id"), item.get("arguments", "")
            if not isinstance(name, str) or not name:
                raise _fail("name is required", f"{where}.name")
            if not isinstance(call_id, str) or not call_id:
                raise _fail("call_id is required", f"{where}.call_id")
            if not isinstance(arguments, str):
                raise _fail("arguments must be a JSON string", f"{where}.arguments")
            call: ToolCall = {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last.get("role") == "assistant":  # the same turn's text, then calls
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not call_id:
                raise _fail("call_id is required", f"{where}.call_id")
            if isinstance(output, list):
                output = _text_parts(output, f"{where}.output", assistant=True)
            if not isinstance(output, str):
                raise _fail("output must be a string or an array of text parts", f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        elif kind == "reasoning":
            continue
        else:
            raise _fail(f"input item type {kind!r} is not supported", f"{where}.type")
    return messages


def _tools(tools: Any) -> list[Tool] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise _fail("must be an array", "tools")
    out: list[Tool] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _fail("must be an object", where)
        if tool.get("type") != "function":
            raise _fail(
                f"tool type {tool.get('type')!r} is not supported (function tools only)", f"{where}.type"
            )
        name = tool.get("name")
        if not isinstance(name, str) or TOOL_NAME.match(name) is None:
            raise _fail("name must match ^[A-Za-z0-9_-]{1,64}$", f"{where}.name")
        params = tool.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise _fail("parameters must be a JSON Schema object", f"{where}.parameters")
        fn: dict[str, Any] = {"name": name}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        if params is not None:
            fn["parameters"] = params
        if isinstance(tool.get("strict"), bool):
            fn["strict"] = tool["strict"]
        out.append(cast(Tool, {"type": "function", "function": fn}))
    return out


def _tool_choice(choice: Any) -> str | dict[str, Any] | None:
    if choice is None or choice in ("auto", "none", "required"):
        return cast(str | None, choice)
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _fail("must be 'auto', 'none', 'required' or {type: 'function', name}", "tool_choice")


def _response_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise _fail("must be an object", "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise _fail("schema must be a JSON Schema object", "text.format.schema")
        name = fmt.get("name")
        if not isinstance(name, str) or TOOL_NAME.match(name) is None:
            raise _fail("name must match ^[A-Za-z0-9_-]{1,64}$", "text.format.name")
        spec = {"name": name, "schema": schema}
        for key in ("strict", "description"):
            if key in fmt:
                spec[key] = fmt[key]
        return {"type": "json_schema", "json_schema": spec}
    raise _fail("type must be 'text', 'json_object' or 'json_schema'", "text.format.type")


def _number(body: Mapping[str, Any], name: str, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= high:
        raise _fail(f"must be a number from 0 to {high:g}", name)
    return float(value)


def parse_responses(body: Mapping[str, Any], history: list[dict[str, Any]]) -> ResponsesRequest:
    """Validate a Responses body and build its canonical chat body after ``history`` (the items of
    the ``previous_response_id`` chain, looked up by the caller); 400 naming the field."""
    for name, why in _REFUSED.items():
        if body.get(name):
            raise _fail(why, name)
    model = body.get("model")
    if not isinstance(model, str) or not 0 < len(model) <= 512:
        raise _fail("is required (a model id, or 'auto')", "model")
    raw = body.get("input")
    if isinstance(raw, str):
        items: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": raw}]
    elif isinstance(raw, list) and raw:
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise _fail("must be an object", f"input[{i}]")
        items = [dict(item) for item in raw]
    else:
        raise _fail("must be a string or a non-empty array of input items", "input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _fail("must be a string", "instructions")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise _fail("must be a string", "previous_response_id")
    store, stream = body.get("store", True), body.get("stream", False)
    if not isinstance(store, bool):
        raise _fail("must be a boolean", "store")
    if not isinstance(stream, bool):
        raise _fail("must be a boolean", "stream")
    messages: list[Message] = [{"role": "system", "content": instructions}] if instructions else []
    messages += input_messages(history)
    messages += input_messages(items)  # checked on their own: errors name this request's items
    chat: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if stream:
        chat["stream_options"] = {"include_usage": True}
    if (tools := _tools(body.get("tools"))) is not None:
        chat["tools"] = tools
    if (choice := _tool_choice(body.get("tool_choice"))) is not None:
        chat["tool_choice"] = choice
    if (fmt := _response_format(body.get("text"))) is not None:
        chat["response_format"] = fmt
    reasoning = body.get("reasoning")
    if reasoning is not None:
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else "?"
        if effort is not None and (not isinstance(effort, str) or effort not in _EFFORTS):
            raise _fail(f"must be one of {sorted(_EFFORTS)}", "reasoning.effort")
        if effort is not None:
            chat["reasoning_effort"] = effort
    max_output = body.get("max_output_tokens")
    if max_output is not None:
        if not isinstance(max_output, int) or isinstance(max_output, bool) or max_output < 1:
            raise _fail("must be an integer >= 1", "max_output_tokens")
        chat["max_tokens"] = max_output
    for name, high in (("temperature", 2.0), ("top_p", 1.0)):
        if (value := _number(body, name, high)) is not None:
            chat[name] = value
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise _fail("must be a boolean", "parallel_tool_calls")
        if "tools" in chat:
            chat["parallel_tool_calls"] = parallel
    if isinstance(body.get("user"), str):
        chat["user"] = body["user"]
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 16:
            raise _fail("must be an object of at most 16 string values", "metadata")
        chat["metadata"] = metadata
    for name in EXTENSIONS:
        if name in body:
            chat[name] = body[name]
    echo = {
        "instructions": instructions,
        "max_output_tokens": max_output,
        "metadata": metadata or {},
        "parallel_tool_calls": parallel if parallel is not None else True,
        "previous_response_id": previous,
        "reasoning": {"effort": chat.get("reasoning_effort"), "summary": None},
        "store": store,
        "temperature": chat.get("temperature"),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": chat.get("top_p"),
        "truncation": body.get("truncation", "disabled"),
        "user": body.get("user"),
    }
    stored = [_stored_item(item) for item in items]
    return ResponsesRequest(
        cast(ChatRequest, chat), stored, previous, store, stream, echo, [*history, *stored]
    )


def response_usage(usage: Usage | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Canonical usage -> the Responses API's (cache reads and writes, reasoning tokens)."""
    if not usage:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    details = usage.get("prompt_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": details.get("cached_tokens") or 0,
            "cache_write_tokens": details.get("cache_creation_tokens") or 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": out_details.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def _status(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(
    response_id: str,
    model: str,
    created_at: int,
    echo: Mapping[str, Any],
    output: list[dict[str, Any]],
    *,
    status: str,
    incomplete: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object with the request's echoed settings."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "usage": usage,
        **echo,
    }


def _reasoning_text(message: Mapping[str, Any]) -> str | None:
    text = message.get("reasoning_content") or message.get("reasoning")
    return text if isinstance(text, str) and text else None


def output_items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A canonical assistant message -> Responses output items: reasoning, message, function calls."""
    items: list[dict[str, Any]] = []
    if (thought := _reasoning_text(message)) is not None:
        items.append(_reasoning_item("rs_" + new_hex(), thought, "completed"))
    content, refusal = message.get("content"), message.get("refusal")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content or refusal:
        part = {"type": "refusal", "refusal": refusal} if refusal and not content else _text_part(content)
        items.append(_message_item("msg_" + new_hex(), [part], "completed"))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        items.append(
            _call_item(
                "fc_" + new_hex(),
                call.get("id") or "call_" + new_hex(),
                fn.get("name", ""),
                fn.get("arguments") or "",
                "completed",
            )
        )
    return items


def _text_part(text: Any) -> dict[str, Any]:
    return {"type": "output_text", "text": text or "", "annotations": [], "logprobs": []}


def _message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _reasoning_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "status": status,
        "content": [{"type": "reasoning_text", "text": text}],
    }


def completion_to_response(
    completion: Completion, response_id: str, model: str, echo: Mapping[str, Any]
) -> dict[str, Any]:
    """A canonical ``chat.completion`` -> a ``response`` object."""
    choice = (completion.get("choices") or [{}])[0]
    status, incomplete = _status(choice.get("finish_reason"))
    return response_object(
        response_id,
        model,
        int(completion.get("created") or time.time()),
        echo,
        output_items(choice.get("message") or {}),
        status=status,
        incomplete=incomplete,
        usage=response_usage(completion.get("usage")),
    )


def sse(event: dict[str, Any]) -> bytes:
    """One Responses stream event as server-sent event bytes (``event:`` names its type)."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class ResponsesStreamEncoder:
    """Canonical chunks -> the Responses API's typed events, in order: ``response.created`` and
    ``response.in_progress``; per output item ``output_item.added``, its deltas
    (``output_text.delta``, ``function_call_arguments.delta``, ``reasoning_text.delta``) and its
    ``done`` events; then ``response.completed`` (or ``response.incomplete``) with the whole
    response, which :attr:`response` keeps for storage."""

    def __init__(self, response_id: str, model: str, echo: Mapping[str, Any]) -> None:
        self.response_id, self.model, self.echo = response_id, model, echo
        self.created_at = int(time.time())
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None  # the item receiving deltas
        self._calls: dict[int, dict[str, Any]] = {}  # tool-call index -> its item
        self._finish_reason: str | None = None
        self._started = False
        self.response: dict[str, Any] | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse(event)

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self.response_id, self.model, self.created_at, self.echo, self.output, status=status, **extra
        )

    def start(self) -> bytes:
        """``response.created`` and ``response.in_progress`` (once)."""
        if self._started:
            return b""
        self._started = True
        snapshot = self._snapshot("in_progress")
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def _close_open(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        index = self.output.index(item)
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            out += self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=[],
            )
            out += self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
        elif item["type"] == "reasoning":
            part = item["content"][0]
            out += self._event(
                "response.reasoning_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=part["text"],
            )
        elif item["type"] == "function_call":
            out += self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        item["status"] = "completed"
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _add(self, item: dict[str, Any]) -> bytes:
        out = self._close_open()
        self.output.append(item)
        self._open = item
        added = {**item, "status": "in_progress"}
        if item["type"] in ("message", "reasoning"):
            added["content"] = []
        if item["type"] == "function_call":
            added["arguments"] = ""
        return out + self._event("response.output_item.added", output_index=len(self.output) - 1, item=added)

    def encode(self, chunk: Chunk) -> bytes:
        out = self.start()
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            thought = _reasoning_text(delta)
            if thought:
                if self._open is None or self._open["type"] != "reasoning":
                    out += self._add(_reasoning_item("rs_" + new_hex(), "", "in_progress"))
                item = cast(dict[str, Any], self._open)
                item["content"][0]["text"] += thought
                out += self._event(
                    "response.reasoning_text.delta",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    content_index=0,
                    delta=thought,
                )
            text = delta.get("content")
            if text:
                if self._open is None or self._open["type"] != "message":
                    out += self._add(_message_item("msg_" + new_hex(), [_text_part("")], "in_progress"))
                    item = cast(dict[str, Any], self._open)
                    out += self._event(
                        "response.content_part.added",
                        item_id=item["id"],
                        output_index=len(self.output) - 1,
                        content_index=0,
                        part=_text_part(""),
                    )
                item = cast(dict[str, Any], self._open)
                item["content"][0]["text"] += text
                out += self._event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            for call in delta.get("tool_calls") or ():
                index = call.get("index", 0)
                fn = call.get("function") or {}
                call_item = self._calls.get(index)
                if call_item is None:
                    call_item = _call_item(
                        "fc_" + new_hex(),
                        call.get("id") or "call_" + new_hex(),
                        fn.get("name") or "",
                        "",
                        "in_progress",
                    )
                    self._calls[index] = call_item
                    out += self._add(call_item)
                elif call_item is not self._open:  # a provider interleaving calls: take it up again
                    out += self._close_open()
                    self._open = call_item
                args = fn.get("arguments")
                if args:
                    call_item["arguments"] += args
                    out += self._event(
                        "response.function_call_arguments.delta",
                        item_id=call_item["id"],
                        output_index=self.output.index(call_item),
                        delta=args,
                    )
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return out

    def finish(self, usage: Mapping[str, Any] | None) -> bytes:
        out = self.start() + self._close_open()
        status, incomplete = _status(self._finish_reason)
        self.response = self._snapshot(status, incomplete=incomplete, usage=response_usage(usage))
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, response=self.response)

    def error(self, message: str, error_type: str = "api_error") -> bytes:
        out = self.start()
        self.response = self._snapshot("failed", error={"code": "server_error", "message": message})
        out += self._event("error", code=error_type, message=message, param=None)
        return out + self._event("response.failed", response=self.response)
