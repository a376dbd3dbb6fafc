"""Which models may serve a request that names its model: that model, then its fallbacks.

Requests without a model (``auto``) are ranked by ``RoutingService.route`` instead; both end in a
plan, the ordered list of models failover tries.
"""

from __future__ import annotations

from turnout.auth.principal import Principal
from turnout.domain.capsule import allowed_by_capsule
from turnout.domain.snapshot import ModelEntry, Snapshot
from turnout.errors import Forbidden, InvalidRequest, NotFound


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
