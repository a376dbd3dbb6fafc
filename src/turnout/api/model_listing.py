"""The models a caller may use, listed and retrieved in its own dialect: ``GET /v1/models`` and
``GET /v1/models/{model}`` (OpenAI's shape, or Anthropic's when the request carries
``anthropic-version``, as the Anthropic SDK's always does) and ``GET /api/models`` (native).

What is listed is what answers: every usable model for a platform caller, an agent's enabled models
that its capsule admits for an agent key. Retrieval takes any name a call takes (catalog id, alias,
a provider's own model id) and is a 404 in the caller's dialect for a model it may not use, as for
one that does not exist, so a key cannot probe another agent's catalog."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from turnout.api.auth import authenticate
from turnout.api.deps import container_of
from turnout.api.dialects import ANTHROPIC, OPENAI, Dialect
from turnout.api.rejections import refused
from turnout.auth.principal import Principal
from turnout.domain.capsule import allowed_by_capsule
from turnout.domain.snapshot import ModelEntry, Snapshot
from turnout.errors import InvalidRequest, NotFound, TurnoutError

PREFIX = "/v1/models/"
ANTHROPIC_PAGE = 20  # Anthropic's default page size
ANTHROPIC_MAX_PAGE = 1000


def _dialect(request: Request) -> Dialect:
    return ANTHROPIC if "anthropic-version" in request.headers else OPENAI


def usable_models(snapshot: Snapshot, principal: Principal) -> list[ModelEntry]:
    """The models ``principal`` may call, by public name."""
    found: Iterable[ModelEntry]
    if principal.agent_id is None:
        found = snapshot.models.values()
    else:  # an agent's enabled models only
        enabled = snapshot.agent_models.get((principal.tenant_id, principal.agent_id), {})
        found = (m for model_id in enabled if (m := snapshot.models.get(model_id)) is not None)
    return sorted((m for m in found if may_use(snapshot, principal, m)), key=lambda m: m.public_name)


def may_use(snapshot: Snapshot, principal: Principal, model: ModelEntry) -> bool:
    """Whether ``principal`` may call ``model``: it is usable and, for an agent, enabled for it and
    admitted by its capsule for its role."""
    if not model.usable:
        return False
    if principal.agent_id is None:
        return True
    enabled = snapshot.agent_models.get((principal.tenant_id, principal.agent_id), {})
    return model.id in enabled and allowed_by_capsule(snapshot, principal, model)


def _openai_model(m: ModelEntry) -> dict[str, Any]:
    return {"id": m.public_name, "object": "model", "created": m.created, "owned_by": m.provider_id}


def _anthropic_model(m: ModelEntry) -> dict[str, Any]:
    created = datetime.fromtimestamp(m.created, UTC).isoformat().replace("+00:00", "Z")
    return {"type": "model", "id": m.public_name, "display_name": m.display_name, "created_at": created}


def _native_model(m: ModelEntry) -> dict[str, Any]:
    return {
        "id": m.public_name,
        "provider": m.provider_id,
        "capabilities": ["embedding"]
        if m.model_type == "embedding"
        else ["chat", "completion", *sorted(m.capabilities)],
        "properties": {
            "context_length": m.ctx_length,
            "token_limit": m.ctx_length,
            "pricing": {
                "input": None if m.pricing_input is None else m.pricing_input / 1000,
                "output": None if m.pricing_output is None else m.pricing_output / 1000,
            },
        },
        "metadata": {"version": None, "description": m.display_name},
    }


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _anthropic_page(request: Request, models: Sequence[ModelEntry]) -> dict[str, Any]:
    """Anthropic's list page: ``limit`` (1-1000, default 20) after ``after_id`` or before
    ``before_id``, with ``has_more``, ``first_id`` and ``last_id``."""
    params = request.query_params
    raw = params.get("limit")
    limit = ANTHROPIC_PAGE
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= ANTHROPIC_MAX_PAGE:
            raise InvalidRequest(f"limit must be an integer from 1 to {ANTHROPIC_MAX_PAGE}", param="limit")
        limit = int(raw)
    names = [m.public_name for m in models]
    after, before = params.get("after_id"), params.get("before_id")
    if after is not None and before is not None:
        raise InvalidRequest("give after_id or before_id, not both", param="before_id")
    if before is not None:
        end = names.index(before) if before in names else len(names)
        start = max(0, end - limit)
        page, more = models[start:end], start > 0
    else:
        start = names.index(after) + 1 if after is not None and after in names else 0
        page, more = models[start : start + limit], start + limit < len(models)
    data = [_anthropic_model(m) for m in page]
    return {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


async def list_models(request: Request) -> Response:
    """``GET /v1/models``: OpenAI's list, or Anthropic's page for an Anthropic client."""
    container = container_of(request)
    dialect = _dialect(request)
    try:
        principal = authenticate(request, container)
        models = usable_models(container.snapshots.current, principal)
        if dialect is ANTHROPIC:
            return _json(_anthropic_page(request, models))
    except TurnoutError as exc:
        return refused(request, dialect, exc)
    return _json({"object": "list", "data": [_openai_model(m) for m in models]})


async def retrieve_model(request: Request) -> Response:
    """``GET /v1/models/{model}``: one model the caller may use, by any name a call takes."""
    container = container_of(request)
    dialect = _dialect(request)
    name = request.url.path[len(PREFIX) :]
    try:
        principal = authenticate(request, container)
        snapshot = container.snapshots.current
        entry = snapshot.resolve_model(name)
        if entry is None or not may_use(snapshot, principal, entry):
            raise NotFound(f"The model '{name}' does not exist", param="model", code="model_not_found")
    except TurnoutError as exc:
        return refused(request, dialect, exc)
    return _json(_anthropic_model(entry) if dialect is ANTHROPIC else _openai_model(entry))


async def list_native(request: Request) -> Response:
    """``GET /api/models``: the native list, with capabilities, context length and prices."""
    container = container_of(request)
    try:
        principal = authenticate(request, container)
    except TurnoutError as exc:
        return refused(request, OPENAI, exc)
    models = usable_models(container.snapshots.current, principal)
    return _json({"models": [_native_model(m) for m in models]})
