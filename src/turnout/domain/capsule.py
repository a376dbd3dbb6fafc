"""An agent's capsule: which models ``allowed_models`` admits for a caller, and what a valid one is."""

from __future__ import annotations

from typing import Any

from turnout.auth.principal import ROLES, Principal
from turnout.domain.snapshot import ModelEntry, Snapshot
from turnout.errors import InvalidRequest

ANY_ROLE = "*"  # a per-role capsule's entry for every role it does not name
ANY_MODEL = "*"  # a model list holding it admits every model (the agent's enabled ones still apply)
ALLOWED_PARAM = "capsule.allowed_models"


def allowed_by_capsule(
    snapshot: Snapshot, principal: Principal, model: ModelEntry, agent_id: str | None = None
) -> bool:
    """The agent's capsule ``allowed_models`` admits the model for the caller.

    No ``allowed_models``: no capsule restriction. A list: those models, whoever calls. Per role
    (``{"user": [...], "agent": [...], "*": [...]}``): each of the caller's roles gets its own list,
    or the ``"*"`` list when the capsule does not name it, or nothing (fails closed). Agent keys
    carry the role ``agent``; a caller without roles gets only the ``"*"`` list."""
    agent_id = agent_id or principal.agent_id
    if agent_id is None:
        return True
    agent = snapshot.agents.get((principal.tenant_id, agent_id))
    if agent is None:  # deleted meanwhile: nothing is allowed
        return False
    allowed = agent.capsule.get("allowed_models")
    if allowed is None:
        return True
    if isinstance(allowed, dict):
        other = allowed.get(ANY_ROLE)
        grants = [allowed.get(role, other) for role in principal.roles] or [other]
        return any(_admits(ids, model.id) for ids in grants)
    return _admits(allowed, model.id)


def _admits(ids: Any, model_id: str) -> bool:
    return isinstance(ids, list) and (model_id in ids or ANY_MODEL in ids)


def check_allowed_models(capsule: dict[str, Any]) -> None:
    """Refuse a capsule whose ``allowed_models`` would not mean what its author thinks (a misspelt
    role would silently allow nothing): a list of model ids, or an object of role -> list."""
    allowed = capsule.get("allowed_models")
    if allowed is None:
        return
    shape = "a list of model ids, or an object of role -> list of model ids"
    if isinstance(allowed, dict):
        unknown = sorted(str(r) for r in allowed if r not in ROLES and r != ANY_ROLE)
        if unknown:
            names = ", ".join([*ROLES, ANY_ROLE])
            raise InvalidRequest(
                f"{ALLOWED_PARAM}: unknown role(s) {', '.join(unknown)}; roles are {names}",
                param=ALLOWED_PARAM,
            )
        lists = list(allowed.values())
    elif isinstance(allowed, list):
        lists = [allowed]
    else:
        raise InvalidRequest(f"{ALLOWED_PARAM} must be {shape}", param=ALLOWED_PARAM)
    if not all(isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in lists):
        raise InvalidRequest(f"{ALLOWED_PARAM} must be {shape}", param=ALLOWED_PARAM)
