"""The OpenAI Responses API on the simulator: ``POST /v1/responses`` (OpenAI) and
``/api/v1/responses`` (OpenRouter), whole and streamed as typed events.

Like OpenAI it is strict where a gateway could go wrong: every ``function_call_output`` must answer
a ``function_call`` earlier in the same input ("No tool call found ..."), and the simulator keeps no
responses, so a ``previous_response_id`` it never made is a 400 (Turnout must send the conversation
itself). Answers follow the chat routes: the echo of the last user text, or a call of the first
function tool when the last item is the user's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator import text
from turnout.simulator.openai_routes import SSE_HEADERS, openai_error
from turnout.simulator.respond import JSON_HEADERS, Plan, begin, random_id, read_json, send_body, send_stream

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator


def _item_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(
        p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """(message, param) of the first thing OpenAI would refuse, or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "Missing required parameter: 'model'.", "model"
    if body.get("previous_response_id") is not None:
        return (
            f"Previous response with id '{body['previous_response_id']}' not found.",
            "previous_response_id",
        )
    items = body.get("input")
    if isinstance(items, str):
        return None
    if not isinstance(items, list) or not items:
        return "Invalid 'input': expected a string or a non-empty array.", "input"
    calls: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return f"Invalid 'input[{i}]': expected an object.", f"input[{i}]"
        kind = item.get("type", "message")
        if kind == "function_call":
            calls.add(str(item.get("call_id")))
        elif kind == "function_call_output" and str(item.get("call_id")) not in calls:
            return f"No tool call found for function call output with call_id {item.get('call_id')}.", "input"
        elif kind == "message" and item.get("role") not in ("user", "assistant", "system", "developer"):
            return f"Invalid value for 'input[{i}].role'.", f"input[{i}].role"
    return None


class ResponsesRoutes:
    """The Responses API routes of one simulator (OpenAI's and OpenRouter's)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/responses", self.openai)
        router.add_post("/api/v1/responses", self.openrouter)

    async def openai(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "openai", "POST /v1/responses")

    async def openrouter(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "openrouter", "POST /api/v1/responses")

    def _auth(self, request: web.Request) -> web.Response | None:
        key = self.sim.config.api_key
        if key is not None and request.headers.get("Authorization", "") != f"Bearer {key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return None

    async def serve(self, request: web.Request, provider: str, route: str) -> web.StreamResponse:
        sim = self.sim
        sim.hit(provider, route)
        if (denied := self._auth(request)) is not None:
            return denied
        body = await read_json(request)
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        if (problem := _problem(body)) is not None:
            return openai_error(400, problem[0], param=problem[1])
        stream = body.get("stream") is True
        sim.record(provider, request, body["model"], body, stream)
        plan = await begin(sim, request, body["model"], openai_error)
        if not isinstance(plan, Plan):
            return plan
        items = (
            body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        )
        texts = [_item_text(i) for i in items if i.get("type", "message") == "message"]
        last = items[-1]
        prompt = _item_text(last) if last.get("type", "message") == "message" else ""
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        calling = tools and body.get("tool_choice") != "none" and last.get("role") == "user"
        config = sim.config
        if calling:
            arguments = orjson.dumps(text.tool_arguments(tools[0].get("parameters"), prompt)).decode()
            item = {
                "id": random_id("fc_"),
                "type": "function_call",
                "status": "completed",
                "call_id": random_id("call_"),
                "name": tools[0].get("name"),
                "arguments": arguments,
            }
            pieces, answer = text.split_pieces(arguments, 8), ""
        else:
            pieces = text.text_pieces(prompt or "done", config.reply_tokens, config.reply_text)
            answer = "".join(pieces)
            part = {"type": "output_text", "text": answer, "annotations": []}
            item = {
                "id": random_id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        input_tokens = text.count_prompt_tokens(texts)
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(pieces),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + len(pieces),
        }
        response = {
            "id": random_id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body["model"],
            "output": [item],
            "usage": usage,
            "error": None,
            "incomplete_details": None,
            "store": body.get("store", True),
        }
        if not stream:
            return await send_body(request, plan, orjson.dumps(response), JSON_HEADERS, len(pieces))
        return await send_stream(request, plan, _events(response, item, pieces), SSE_HEADERS)


def _events(response: dict[str, Any], item: dict[str, Any], pieces: tuple[str, ...]) -> list[bytes]:
    out: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(out), **fields}
        out.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")

    started = {**response, "status": "in_progress", "output": [], "usage": None}
    event("response.created", response=started)
    event("response.in_progress", response=started)
    opened = {**item, "status": "in_progress"}
    if item["type"] == "function_call":
        event("response.output_item.added", output_index=0, item={**opened, "arguments": ""})
        for piece in pieces:
            event("response.function_call_arguments.delta", item_id=item["id"], output_index=0, delta=piece)
        event(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=0,
            arguments=item["arguments"],
        )
    else:
        event("response.output_item.added", output_index=0, item={**opened, "content": []})
        empty = {"type": "output_text", "text": "", "annotations": []}
        event("response.content_part.added", item_id=item["id"], output_index=0, content_index=0, part=empty)
        for piece in pieces:
            event(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        part = item["content"][0]
        event(
            "response.output_text.done",
            item_id=item["id"],
            output_index=0,
            content_index=0,
            text=part["text"],
            logprobs=[],
        )
        event("response.content_part.done", item_id=item["id"], output_index=0, content_index=0, part=part)
    event("response.output_item.done", output_index=0, item=item)
    event("response.completed", response=response)
    return out
