"""Azure OpenAI: the OpenAI wire format behind deployment URLs
(``POST /openai/deployments/{deployment}/chat/completions?api-version=V``, ``.../embeddings``) and
``GET /openai/models?api-version=V`` (OpenAI's list with Azure's ``capabilities`` object). The key
goes in the ``api-key`` header (or as ``Authorization: Bearer`` for an Entra token); every route
wants ``api-version``. Errors are ``{"error": {"code": "<string>", "message"}}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator.config import DEFAULT_OPENAI_MODELS
from turnout.simulator.respond import JSON_HEADERS, Plan, begin, format_seconds, send_body

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator

_CREATED = 1_715_367_049
_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)


def azure_error(
    status: int, message: str | None = None, retry_after: float | None = None, *, code: str | None = None
) -> web.Response:
    """An error in Azure OpenAI's shape."""
    headers = dict(JSON_HEADERS)
    if status == 429 or retry_after is not None:
        headers["Retry-After"] = format_seconds(1.0 if retry_after is None else retry_after)
    error = {"code": code or str(status), "message": message or f"Simulated error (HTTP {status})."}
    return web.Response(body=orjson.dumps({"error": error}), status=status, headers=headers)


def _entry(model_id: str) -> dict[str, Any]:
    embedding = "embed" in model_id
    capabilities = {
        "chat_completion": not embedding,
        "completion": False,
        "embeddings": embedding,
        "fine_tune": False,
        "inference": True,
    }
    return {
        "id": model_id,
        "object": "model",
        "created_at": _CREATED,
        "status": "succeeded",
        "lifecycle_status": "generally-available",
        "capabilities": capabilities,
    }


class AzureRoutes:
    """The Azure OpenAI routes of one simulator (deployments are named like the models listed)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes."""
        router.add_get("/openai/models", self.list_models)
        router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
        router.add_post("/openai/deployments/{deployment}/embeddings", self.embeddings)

    def models(self) -> tuple[str, ...]:
        """The model ids listed (and the deployments that exist)."""
        return self.sim.config.model_list(DEFAULT_OPENAI_MODELS)

    def _auth(self, request: web.Request) -> web.Response | None:
        if "api-version" not in request.query:
            return azure_error(404, "Resource not found", code="404")
        key = self.sim.config.api_key
        if key is None:
            return None
        given = request.headers.get("api-key")
        if given is None:
            bearer = request.headers.get("Authorization", "")
            given = bearer[7:] if bearer.startswith("Bearer ") else None
        if given != key:
            return azure_error(401, _DENIED, code="401")
        return None

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /openai/models?api-version=V``."""
        self.sim.hit("azure", "GET /openai/models")
        if (denied := self._auth(request)) is not None:
            return denied
        plan = await begin(self.sim, request, None, azure_error)
        if not isinstance(plan, Plan):
            return plan
        body = orjson.dumps({"object": "list", "data": [_entry(m) for m in self.models()]})
        return await send_body(request, plan, body, JSON_HEADERS)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /openai/deployments/{deployment}/chat/completions``: OpenAI's answer."""
        return await self.sim.openai.serve_chat(
            request, "azure", "POST /openai/deployments/chat/completions", self._auth, azure_error,
            deployment=request.match_info["deployment"], listed=self.models(),
        )  # fmt: skip

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """``POST /openai/deployments/{deployment}/embeddings``: OpenAI's answer."""
        return await self.sim.openai.serve_embeddings(
            request, "azure", "POST /openai/deployments/embeddings", self._auth, azure_error,
            deployment=request.match_info["deployment"], listed=self.models(),
        )  # fmt: skip
