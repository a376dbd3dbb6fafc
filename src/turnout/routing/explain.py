"""Decisions as JSON: what the router considered, what it filtered out and why, how it scored."""

from __future__ import annotations

from typing import Any

from turnout.routing.service import Routed
from turnout.routing.types import GroupRoute

MAX_FILTERED = 100
MAX_RANKED = 20


def decision_dict(routed: Routed) -> dict[str, Any]:
    """A compact, JSON-safe record of one routing decision (stored with the message)."""
    d = routed.decision
    det = routed.detection
    detection: dict[str, Any] = {
        "source": det.source,
        "confidence": round(det.confidence, 3),
        "tools_used": list(det.tools_used),
    }
    if det.task_mix:  # the other tasks an imported evaluation's tasks said the prompt may be
        detection["task_mix"] = [{"task": t, "probability": round(p, 3)} for t, p in det.task_mix]
    out = {
        "task_type": det.task_type,
        "detection": detection,
        "required_capabilities": sorted(det.required_capabilities),
        "agent_id": routed.agent_id,
        "policy": routed.policy,
        "reason": d.reason,
        "explored": d.explored,
        "candidates": len(d.ranked) + len(d.filtered),
        "filtered": [{"model": m, "reason": r} for m, r in d.filtered[:MAX_FILTERED]],
        "filtered_total": len(d.filtered),
        "ranked": [
            {
                "model": s.model_id,
                "score": _r(s.score),
                "priority_part": _r(s.priority_part),
                "experience_part": _r(s.experience_part),
                "experience": _r(s.experience),
                "evidence": _r(s.evidence),
                "level": s.level,
                "sampled": _r(s.sampled),
                "est_cost_usd": s.est_cost_usd,
                "penalty": _r(s.penalty),
            }
            for s in d.ranked[:MAX_RANKED]
        ],
        "plan": [m.id for m in routed.plan],
        "chosen": routed.plan[0].id if routed.plan else None,
    }
    if routed.group is not None:  # only requests that named a group carry these keys
        out.update(group_dict(routed.group))
    return out


def group_dict(group: GroupRoute) -> dict[str, Any]:
    """The deployment group a request named: its strategy, the member routing picked (failover's
    first try; the outcome's ``served_by`` names the one that answered) and every member's state."""
    return {
        "group": group.name,
        "strategy": group.strategy,
        "member": group.members[0].model_id if group.members else None,
        "members": [
            {
                "model": m.model_id,
                "weight": m.weight,
                "in_flight": m.in_flight,
                "latency_ms": _r(m.latency_ms),
                "health": m.health,
            }
            for m in group.members
        ],
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
