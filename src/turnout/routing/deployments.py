"""Deployment groups at request time: which members may serve a request, and in which order
failover tries them.

A member is skipped where the agent could not name its model (not enabled, outside the capsule),
where the model is unusable or of another type, and while its breaker is open (it failed and is
cooling down). A member whose cooldown is over goes first: that request is its probe. The others
are ordered by the group's strategy:

- ``weighted``: a draw by weight, then the rest drawn again (sampling without replacement), so a
  3:1 group sends 75% of first tries to the first member;
- ``least-busy``: fewest requests in flight in this process, ties drawn by weight;
- ``lowest-latency``: lowest latency EWMA; a member not measured yet (or not for ``stale_s``) goes
  first while none of its requests is in flight, so it is measured without taking a burst.

Load and latency are this process's own (``DeploymentLoad``, fed by failover); breaker state is
shared by the replicas (``gateway.guards.CircuitBreakers``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from turnout.auth.principal import Principal
from turnout.domain.capsule import allowed_by_capsule
from turnout.domain.groups import GroupEntry
from turnout.domain.snapshot import ModelEntry, Snapshot
from turnout.errors import Forbidden, InvalidRequest
from turnout.routing.types import GroupRoute, MemberState

EWMA_ALPHA = 0.3  # weight of the newest latency: three slow answers outweigh a fast history
STALE_S = 60.0  # a latency older than this is measured again


class MemberHealth(Protocol):
    """What ordering reads of the breakers: skipped now, or due for its probe."""

    def is_open(self, model_id: str, tenant_id: str | None = None) -> bool: ...

    def probe_due(self, model_id: str, tenant_id: str | None = None) -> bool: ...


class DeploymentLoad:
    """Requests in flight and a latency EWMA per group member, in this process: failover writes
    them (``begin``/``end`` around a call, ``observe`` on success), routing reads them. Only group
    members are tracked, so the maps stay as small as the groups."""

    def __init__(
        self, alpha: float = EWMA_ALPHA, stale_s: float = STALE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.alpha = alpha
        self.stale_s = stale_s
        self._clock = clock
        self._in_flight: dict[str, int] = {}
        self._latency: dict[str, list[float]] = {}  # model id -> [EWMA ms, measured at]

    def begin(self, model_id: str) -> None:
        self._in_flight[model_id] = self._in_flight.get(model_id, 0) + 1

    def end(self, model_id: str) -> None:
        left = self._in_flight.get(model_id, 0) - 1
        if left > 0:
            self._in_flight[model_id] = left
        else:
            self._in_flight.pop(model_id, None)

    def observe(self, model_id: str, latency_ms: float) -> None:
        """A successful call's latency (a stream's first byte, a whole answer's last)."""
        now = self._clock()
        seen = self._latency.get(model_id)
        if seen is None:
            self._latency[model_id] = [latency_ms, now]
        else:
            seen[0] += self.alpha * (latency_ms - seen[0])
            seen[1] = now

    def in_flight(self, model_id: str) -> int:
        return self._in_flight.get(model_id, 0)

    def latency_ms(self, model_id: str) -> float | None:
        """The EWMA, None before the first measurement."""
        seen = self._latency.get(model_id)
        return None if seen is None else seen[0]

    def fresh(self, model_id: str) -> bool:
        """Measured within ``stale_s``."""
        seen = self._latency.get(model_id)
        return seen is not None and self._clock() - seen[1] < self.stale_s


@dataclass(slots=True)
class GroupPlan:
    """The members failover tries, in order, what was skipped and why, and the decision's view."""

    members: list[ModelEntry]
    filtered: list[tuple[str, str]]
    route: GroupRoute
    reason: str


def plan_group(
    snapshot: Snapshot,
    principal: Principal,
    agent_id: str | None,
    group: GroupEntry,
    model_type: str,
    health: MemberHealth,
    load: DeploymentLoad,
    rng: random.Random,
) -> GroupPlan:
    """The group's members that may serve this caller, ordered; 4xx when none may."""
    tenant = principal.tenant_id
    enabled = snapshot.agent_models.get((tenant, agent_id), {}) if agent_id is not None else None
    filtered: list[tuple[str, str]] = []
    usable: list[tuple[ModelEntry, float]] = []
    for member in group.members:
        model = snapshot.models.get(member.model_id)
        if model is None:
            filtered.append((member.model_id, "not in the catalog"))
        elif not model.usable:
            filtered.append((model.id, "unavailable or disabled"))
        elif model.model_type != model_type:
            filtered.append((model.id, f"a {model.model_type} model"))
        elif enabled is not None and model.id not in enabled:
            filtered.append((model.id, f"not enabled for agent '{agent_id}'"))
        elif not allowed_by_capsule(snapshot, principal, model, agent_id):
            filtered.append((model.id, "not in the capsule's allowed_models for this role"))
        else:
            usable.append((model, member.weight))
    if not usable:
        raise _none_usable(group, filtered, model_type, agent_id)
    up: list[tuple[ModelEntry, float]] = []
    probes: list[tuple[ModelEntry, float]] = []
    down: list[tuple[ModelEntry, float]] = []
    for model, weight in usable:
        if health.is_open(model.id, tenant):
            down.append((model, weight))
        elif health.probe_due(model.id, tenant):
            probes.append((model, weight))
        else:
            up.append((model, weight))
    ordered = probes + _order(group.strategy, up, load, rng)
    if ordered:
        filtered += [(model.id, "cooling down after a failure (circuit open)") for model, _ in down]
    else:  # every member is cooling down: failover answers 503 with the soonest Retry-After
        ordered = down
    states = {id(m): "probe" for m, _ in probes} | {id(m): "down" for m, _ in down}
    route = GroupRoute(
        group.name,
        group.strategy,
        [
            MemberState(
                model.id,
                weight,
                load.in_flight(model.id),
                load.latency_ms(model.id),
                states.get(id(model), "up"),
            )
            for model, weight in ordered
        ],
    )
    return GroupPlan([m for m, _ in ordered], filtered, route, _reason(group, route, len(up)))


def _order(
    strategy: str, members: list[tuple[ModelEntry, float]], load: DeploymentLoad, rng: random.Random
) -> list[tuple[ModelEntry, float]]:
    """``members`` in the strategy's order. An exponential draw with rate ``weight`` per member,
    sorted ascending, is a weighted draw without replacement (the smallest of independent
    exponentials is member i with probability w_i / sum(w)); it breaks the other strategies' ties."""
    if len(members) < 2:
        return members
    draw = {id(model): rng.expovariate(weight) for model, weight in members}
    if strategy == "least-busy":
        return sorted(members, key=lambda mw: (load.in_flight(mw[0].id), draw[id(mw[0])]))
    if strategy == "lowest-latency":

        def latency_key(mw: tuple[ModelEntry, float]) -> tuple[int, float, float]:
            model_id = mw[0].id
            if not load.fresh(model_id):  # to be measured: first while idle, else after the measured
                return (0 if load.in_flight(model_id) == 0 else 2, 0.0, draw[id(mw[0])])
            return (1, load.latency_ms(model_id) or 0.0, draw[id(mw[0])])

        return sorted(members, key=latency_key)
    return sorted(members, key=lambda mw: draw[id(mw[0])])


def _reason(group: GroupEntry, route: GroupRoute, n_up: int) -> str:
    first = route.members[0]
    head = f"group '{group.name}' ({group.strategy})"
    if first.health == "probe":
        why = "probed after its cooldown"
    elif first.health == "down":
        why = "first of the members cooling down (every member is)"
    elif n_up < 2:
        why = "the only member up"
    elif group.strategy == "least-busy":
        why = f"fewest requests in flight ({first.in_flight})"
    elif group.strategy == "lowest-latency":
        latency = first.latency_ms
        why = "not measured yet" if latency is None else f"latency EWMA {latency:.0f} ms"
    else:
        total = sum(m.weight for m in route.members if m.health == "up")
        why = f"drawn by weight ({first.weight:g} of {total:g})"
    return f"{head}: {first.model_id}, {why}"


def _none_usable(
    group: GroupEntry, filtered: list[tuple[str, str]], model_type: str, agent_id: str | None
) -> Exception:
    """The 4xx when no member may serve: the agent may use none, none is of the type, or none is usable."""
    reasons = [why for _, why in filtered]
    if any(why.startswith("not enabled") or why.startswith("not in the capsule") for why in reasons):
        return Forbidden(
            f"no member of group '{group.name}' is allowed for agent '{agent_id}'",
            param="model",
            code="model_not_allowed",
        )
    if any(why.startswith("a ") for why in reasons):
        return InvalidRequest(
            f"group '{group.name}' has no usable {model_type} model", param="model", code="wrong_model_type"
        )
    return InvalidRequest(
        f"every member of group '{group.name}' is disabled or unavailable",
        param="model",
        code="model_disabled",
    )
