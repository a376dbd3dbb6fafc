"""OpenRouter: the OpenAI wire format under ``/api/v1`` (``POST /api/v1/chat/completions``,
``POST /api/v1/embeddings``, Bearer keys) and its own ``GET /api/v1/models``, which lists prices
(USD per token, as strings), context lengths, modalities and supported parameters. Errors are
``{"error": {"code": <status>, "message"}}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator.config import DEFAULT_OPENROUTER_MODELS
from turnout.simulator.respond import JSON_HEADERS, Plan, begin, format_seconds, send_body

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator

_CREATED = 1_715_367_049
# id -> (name, context length, prompt and completion USD per token, vision)
_KNOWN = {
    "openai/gpt-4o-mini": ("OpenAI: GPT-4o-mini", 128000, "0.00000015", "0.0000006", True),
    "anthropic/claude-haiku-4.5": ("Anthropic: Claude Haiku 4.5", 200000, "0.000001", "0.000005", True),
    "meta-llama/llama-3.3-70b-instruct:free": ("Meta: Llama 3.3 70B (free)", 131072, "0", "0", False),
    "openai/text-embedding-3-small": ("OpenAI: Text Embedding 3 Small", 8192, "0.00000002", "0", False),
}
_PARAMETERS = ["max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice", "response_format"]


def openrouter_error(
    status: int, message: str | None = None, retry_after: float | None = None
) -> web.Response:
    """An error in OpenRouter's shape (the HTTP status repeated as a number in ``code``)."""
    headers = dict(JSON_HEADERS)
    if status == 429 or retry_after is not None:
        headers["Retry-After"] = format_seconds(1.0 if retry_after is None else retry_after)
    body = {"error": {"code": status, "message": message or f"Simulated error (HTTP {status})."}}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers)


def _entry(model_id: str) -> dict[str, Any]:
    name, ctx, prompt, completion, vision = _KNOWN.get(
        model_id, (model_id, 32768, "0.000001", "0.000002", False)
    )
    embedding = "embed" in model_id
    inputs = ["text", "image"] if vision else ["text"]
    outputs = ["embeddings"] if embedding else ["text"]
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "name": name,
        "created": _CREATED,
        "context_length": ctx,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": "Other",
        },
        "pricing": {"prompt": prompt, "completion": completion, "request": "0", "image": "0"},
        "top_provider": {"context_length": ctx, "max_completion_tokens": 16384, "is_moderated": False},
        "supported_parameters": [] if embedding else _PARAMETERS,
    }


class OpenRouterRoutes:
    """The OpenRouter routes of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes."""
        router.add_get("/api/v1/models", self.list_models)
        router.add_post("/api/v1/chat/completions", self.chat)
        router.add_post("/api/v1/embeddings", self.embeddings)

    def models(self) -> tuple[str, ...]:
        """The model ids listed."""
        return self.sim.config.model_list(DEFAULT_OPENROUTER_MODELS)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = self.sim.config.api_key
        header = request.headers.get("Authorization", "")
        if key is not None and header != f"Bearer {key}":
            return openrouter_error(401, "No auth credentials found" if not header else "User not found.")
        return None

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v1/models`` (open to anyone, like OpenRouter's)."""
        self.sim.hit("openrouter", "GET /api/v1/models")
        plan = await begin(self.sim, request, None, openrouter_error)
        if not isinstance(plan, Plan):
            return plan
        body = orjson.dumps({"data": [_entry(m) for m in self.models()]})
        return await send_body(request, plan, body, JSON_HEADERS)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/v1/chat/completions``: OpenAI's answer."""
        return await self.sim.openai.serve_chat(
            request, "openrouter", "POST /api/v1/chat/completions", self._auth, openrouter_error,
            listed=self.models(),
        )  # fmt: skip

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/v1/embeddings``: OpenAI's answer."""
        return await self.sim.openai.serve_embeddings(
            request, "openrouter", "POST /api/v1/embeddings", self._auth, openrouter_error,
            listed=self.models(),
        )  # fmt: skip
