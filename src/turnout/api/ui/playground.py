"""The chat playground: pick an agent and a model (or "auto"), chat with streamed answers, and rate
them. A message goes through the gateway exactly as ``/v1/chat/completions`` does (routing, guard,
failover, record), as the signed-in user acting for the chosen agent of their own tenant; ratings
go through the feedback service, as ``POST /api/v2/chat/messages/{id}/feedback`` does."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from turnout.api.answers import render
from turnout.api.deps import container_of
from turnout.api.dialects import OPENAI
from turnout.api.errors import validation_message
from turnout.api.parse import decode_json, parse_chat
from turnout.api.routing import find_decision
from turnout.api.ui.render import page
from turnout.api.ui.session import check_csrf, signed_in
from turnout.auth.principal import Principal
from turnout.errors import InvalidRequest, TurnoutError
from turnout.feedback.service import EventIn, FeedbackIn

router = APIRouter(prefix="/ui/playground", include_in_schema=False)


@router.get("")
async def playground(request: Request) -> Response:
    user = signed_in(request, container_of(request).jwt)
    snapshot = container_of(request).snapshots.current
    tenant = user.principal.tenant_id
    agents = sorted(
        (a for (t, _), a in snapshot.agents.items() if t == tenant and a.is_active), key=lambda a: a.id
    )
    models = {  # each agent's models, and whether each takes images (the attach control shows then)
        a.id: [
            {"id": m, "vision": m in snapshot.models and "vision" in snapshot.models[m].capabilities}
            for m in sorted(snapshot.agent_models.get((tenant, a.id), {}))
        ]
        for a in agents
    }
    return page(request, user, "playground.html", agents=agents, models=models)


def _acting(user_principal: Principal, agent_id: Any) -> Principal:
    if not isinstance(agent_id, str) or not agent_id:
        raise InvalidRequest("pick an agent", param="agent_id")
    return Principal(
        subject=user_principal.subject,
        tenant_id=user_principal.tenant_id,
        roles=user_principal.roles,
        agent_id=agent_id,
    )


@router.post("/chat")
async def chat(request: Request) -> Response:
    """One chat turn (OpenAI body plus ``agent_id``), answered as ``/v1/chat/completions`` answers."""
    container = container_of(request)
    try:
        user = signed_in(request, container.jwt)
        check_csrf(user, request.headers.get("x-csrf-token"))
        body = decode_json(await request.body())
        principal = _acting(user.principal, body.pop("agent_id", None))
        container.snapshots.current.acting_agent(
            principal.tenant_id, principal.agent_id or "", param="agent_id"
        )
        if body.get("model") in ("", "auto"):
            body.pop("model")
        call = parse_chat(body)
        result = await container.gateway.chat(principal, call, OPENAI.name)
    except TurnoutError as exc:
        return OPENAI.error_response(exc)
    return render(OPENAI, result, call.include_usage)


@router.post("/feedback/{message_id}")
async def feedback(request: Request, message_id: str) -> Response:
    """👍 (1.0) or 👎 (0.0) on an answer, or an implicit event: ``regenerate`` or ``copy``."""
    container = container_of(request)
    try:
        user = signed_in(request, container.jwt)
        check_csrf(user, request.headers.get("x-csrf-token"))
        body = decode_json(await request.body())
        if len(message_id) > 36:
            raise InvalidRequest("message id must be at most 36 characters", param="message_id")
        try:
            if "event" in body:
                out = await container.feedback.event(message_id, EventIn.model_validate(body), user.principal)
            else:
                out = await container.feedback.rate(
                    message_id, FeedbackIn.model_validate(body), user.principal
                )
        except ValidationError as exc:  # every bad field, as the API's rating endpoint says it
            message, param = validation_message(exc.errors())
            raise InvalidRequest(message, param=param) from None
    except TurnoutError as exc:
        return OPENAI.error_response(exc)
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/decision/{message_id}")
async def decision(request: Request, message_id: str) -> Response:
    """The "why this model" panel of an answer: its routing decision, from the decision log."""
    container = container_of(request)
    user = signed_in(request, container.jwt)
    if len(message_id) > 36:
        raise InvalidRequest("message id must be at most 36 characters", param="message_id")
    found = await find_decision(container, message_id, user.principal)
    return page(request, user, "_decision.html", decision=found)


@router.get("/answer/{message_id}")
async def answered(request: Request, message_id: str) -> Response:
    """How an answer ended (model, cost, latency, attempts), for its bubble once its stream is done."""
    container = container_of(request)
    user = signed_in(request, container.jwt)
    if len(message_id) > 36:
        raise InvalidRequest("message id must be at most 36 characters", param="message_id")
    found = await find_decision(container, message_id, user.principal)
    return Response(orjson.dumps(found.get("outcome") or {}), media_type="application/json")
