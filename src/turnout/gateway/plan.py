"""Which models may serve a request that names its model: that model, then its fallbacks.

Requests without a model (``auto``) are ranked by ``turnout.routing.service`` instead.
"""

from __future__ import annotations

from turnout.auth.principal import Principal
from turnout.errors import Forbidden, InvalidRequest, NotFound
from turnout.gateway.snapshot import ModelEntry, Snapshot


def allowed_by_capsule(
    snapshot: Snapshot, principal: Principal, model: ModelEntry, agent_id: str | None = None
) -> bool:
    """The agent's capsule ``allowed_models`` (a list, or per-role lists) admits the model."""
    agent_id = agent_id or principal.agent_id
    if agent_id is None:
        return True
    agent = snapshot.agents.get(agent_id)
    if agent is None:
        return True
    allowed = agent.capsule.get("allowed_models")
    if allowed is None:
        return True
    if isinstance(allowed, dict):
        lists = [allowed.get(role) for role in principal.roles if role in allowed]
        if not lists:
            return True
        return any(isinstance(ids, list) and model.id in ids for ids in lists)
    return isinstance(allowed, list) and model.id in allowed


def build_plan(
    snapshot: Snapshot,
    principal: Principal,
    model: str,
    fallbacks: list[str],
    model_type: str,
    agent_id: str | None = None,
) -> list[ModelEntry]:
    """Resolve the requested model and fallbacks; raise 4xx for unknown, disabled or forbidden ones."""
    plan: list[ModelEntry] = []
    for index, name in enumerate([model, *fallbacks]):
        param = "model" if index == 0 else f"fallbacks[{index - 1}]"
        entry = snapshot.resolve_model(name)
        if entry is None:
            raise NotFound(f"model '{name}' does not exist", param=param, code="model_not_found")
        if not entry.usable:
            raise InvalidRequest(
                f"model '{entry.id}' is disabled or unavailable", param=param, code="model_disabled"
            )
        if entry.model_type != model_type:
            raise InvalidRequest(
                f"model '{entry.id}' is a {entry.model_type} model", param=param, code="wrong_model_type"
            )
        if not allowed_by_capsule(snapshot, principal, entry, agent_id):
            raise Forbidden(
                f"model '{entry.id}' is not allowed for this agent", param=param, code="model_not_allowed"
            )
        if entry not in plan:
            plan.append(entry)
    return plan
