"""Legacy ``POST /v1/completions`` on the simulator, as the servers that have it answer it.

In the ``llama.cpp`` (or ``vllm``) flavor every model serves it, as on those self-hosted servers; in
the default ``openai`` flavor only ``*instruct*`` models do, and a chat model gets OpenAI's 404
("This is a chat model and not supported in the v1/completions endpoint").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator import text
from turnout.simulator.openai_routes import DONE, SSE_HEADERS, openai_error
from turnout.simulator.respond import JSON_HEADERS, Plan, begin, random_id, send_body, send_stream

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator


class CompletionsRoutes:
    """``/v1/completions`` of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/completions", self.completions)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        sim.hit("openai", "POST /v1/completions")
        key = sim.config.api_key
        if key is not None and request.headers.get("Authorization", "") != f"Bearer {key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        if not isinstance(prompt, str):
            return openai_error(400, "Invalid 'prompt': expected a string.", param="prompt")
        if sim.config.flavor == "openai" and "instruct" not in model:
            message = "This is a chat model and not supported in the v1/completions endpoint."
            return openai_error(404, message, code="model_not_found")
        stream = body.get("stream") is True
        sim.record("openai", request, model, body, stream, raw)
        plan = await begin(sim, request, model, openai_error)
        if not isinstance(plan, Plan):
            return plan
        pieces = text.text_pieces(prompt, sim.config.reply_tokens, sim.config.reply_text)
        limit = body.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and limit < len(pieces):
            pieces, finish = pieces[:limit], "length"
        prompt_tokens = text.count_prompt_tokens([prompt])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }
        head: dict[str, Any] = {
            "id": random_id("cmpl-", 29),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
        }
        if stream:
            chunks = [
                b"data: "
                + orjson.dumps(
                    {**head, "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}]}
                )
                + b"\n\n"
                for p in pieces
            ]
            last = {**head, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}]}
            chunks.append(b"data: " + orjson.dumps(last) + b"\n\n")
            options = body.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage") is True:
                chunks.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": usage}) + b"\n\n")
            chunks.append(DONE)
            return await send_stream(request, plan, chunks, SSE_HEADERS)
        choice = {"text": "".join(pieces), "index": 0, "logprobs": None, "finish_reason": finish}
        answer = {**head, "choices": [choice], "usage": usage}
        return await send_body(request, plan, orjson.dumps(answer), JSON_HEADERS, len(pieces))
