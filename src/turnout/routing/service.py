"""The routing step of the pipeline: detect the task, gather the agent's candidates, filter,
score with experience, and hand a ranked list to failover. Reads only in-memory state."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from turnout.auth.principal import Principal
from turnout.domain.budgets import Steering
from turnout.domain.capsule import allowed_by_capsule
from turnout.domain.groups import GroupEntry
from turnout.domain.policies import DEFAULT_POLICY, PolicyView
from turnout.domain.requests import ChatCall
from turnout.domain.snapshot import ModelEntry, Snapshot
from turnout.domain.task_maps import DEFAULT_MAPS
from turnout.errors import Forbidden, InvalidRequest, NotFound
from turnout.routing.classifier import TaskClassifier
from turnout.routing.deployments import DeploymentLoad, plan_group
from turnout.routing.detection import TextClassifier, detect_task, last_user_text
from turnout.routing.plan import build_plan
from turnout.routing.priors import PriorLoader
from turnout.routing.prompt_memory import prompt_features
from turnout.routing.router import CandidateSet, Router
from turnout.routing.types import (
    Candidate,
    Decision,
    GroupRoute,
    RouteRequest,
    ScoredCandidate,
    TaskDetection,
)

log = structlog.get_logger(__name__)
MAX_PLAN = 5  # models tried in order by failover
NO_AGENT_CANDIDATES = 1000
CACHE_SIZE = 4096  # callers without an agent: the highest-priority usable models


class BreakerView(Protocol):
    """What routing reads of the circuit breakers (``gateway.guards.CircuitBreakers``): whether a
    model is being skipped for a caller's tenant right now, or is due for its probe."""

    def is_open(self, model_id: str, tenant_id: str | None = None) -> bool: ...

    def probe_due(self, model_id: str, tenant_id: str | None = None) -> bool: ...


@dataclass(slots=True)
class Routed:
    """The routing outcome for one request."""

    detection: TaskDetection
    plan: list[ModelEntry]
    decision: Decision
    policy: str
    agent_id: str | None
    group: GroupRoute | None = None  # the deployment group the caller named, if any
    # the prompt's features (float32 bytes) when the prompt memory routed it: a rating of the answer
    # adds them to the memory
    prompt_vector: bytes | None = None


class Steer(Protocol):
    """How a caller's budgets steer routing: cost tiers left, the price on cost (None: not at all)."""

    def __call__(
        self, snapshot: Snapshot, principal: Principal, agent_id: str | None, policy: str | None
    ) -> Steering | None: ...


class RoutingService:
    """Turns a request into a ranked plan; explains itself without calling any model."""

    def __init__(
        self,
        router: Router,
        breakers: BreakerView,
        *,
        default_model: str | None = None,
        classifier: TextClassifier | None = None,
        load: DeploymentLoad | None = None,
        priors: PriorLoader | None = None,
        prompt_encoder: TaskClassifier | None = None,
    ) -> None:
        self.router = router
        # reads a prompt's features for the router's prompt memory (None: no features, no memory)
        self.prompt_encoder = prompt_encoder if router.memory is not None else None
        self.priors = priors  # imported evaluations: their task classifiers, when there are any
        self.load = load or DeploymentLoad()  # group members' load and latency, fed by failover
        self.classifier = classifier
        self._breakers = breakers
        self._default_model = default_model
        self._rng = random.Random()
        self._cache: dict[tuple[Any, ...], tuple[Snapshot, CandidateSet, list[tuple[str, str]]]] = {}
        # (candidate set, tiers left) -> the set cut to those tiers, and the ids cut
        self._tiered: dict[tuple[int, frozenset[str]], tuple[Snapshot, CandidateSet, list[str]]] = {}
        self._shared: frozenset[str] = frozenset()  # the sharing setting the experience store has
        self.steer: Steer | None = None  # budgets that steer routing (spend.guard), when wired
        self.observe: Callable[[Routed], None] | None = None  # the router's choices, for metrics

    def agent_of(self, snapshot: Snapshot, principal: Principal, call: ChatCall) -> str | None:
        """The agent a request acts for: the API key's (checked when authenticated), or an active
        agent of the caller's tenant named by ``metadata.agent_id``."""
        if principal.agent_id is not None:
            return principal.agent_id
        wanted = call.metadata.get("agent_id")
        if wanted is None:
            return None
        return snapshot.acting_agent(principal.tenant_id, str(wanted), param="metadata.agent_id").id

    def route(
        self, snapshot: Snapshot, principal: Principal, call: ChatCall, model_type: str = "chat"
    ) -> Routed:
        # the classifier only matters when the router chooses; a named model skips its ~100 µs
        classifier = self.classifier if call.model is None else None
        learned = self.priors.task_models if self.priors is not None and call.model is None else None
        detection = detect_task(
            call.body,
            snapshot.task_maps or DEFAULT_MAPS,
            explicit=call.task_type,
            classifier=classifier,
            learned=learned,
        )
        agent_id = self.agent_of(snapshot, principal, call)
        policy = self._policy(snapshot, detection.task_type, principal.tenant_id, agent_id)
        if call.model is not None:  # the caller named a model: no ranking, but the same checks
            group = snapshot.groups.get(call.model)  # the only cost groups add to a named model
            if group is not None:
                return self._group(snapshot, principal, call, detection, policy, agent_id, group, model_type)
            plan = build_plan(snapshot, principal, call.model, call.fallbacks, model_type, agent_id)
            self._check_enabled(snapshot, principal.tenant_id, agent_id, plan)
            ranked = [_explicit(m) for m in plan]
            decision = Decision(detection.task_type, ranked, reason="model named by the caller")
            return Routed(detection, plan, decision, policy.name if policy else DEFAULT_POLICY, agent_id)
        vector = None
        try:  # the prompt's features too: failing to read them must not fail the request either
            vector = self._prompt_vector(call)
            decision = self.decide(
                snapshot, principal, call, detection, agent_id, policy, model_type, prompt_vector=vector
            )
        except (InvalidRequest, NotFound, Forbidden):
            raise
        except Exception as exc:  # SRS 7.4: the router failing must not fail the request
            log.error("router_failed", error_type=type(exc).__name__)
            return self._default(snapshot, detection, policy, agent_id, exc)
        if not decision.ranked:
            raise InvalidRequest(
                f"no enabled model satisfies this request ({decision.reason})",
                param="model",
                code="no_model_available",
            )
        plan = [snapshot.models[s.model_id] for s in decision.ranked[:MAX_PLAN]]
        plan += [m for m in self._fallbacks(snapshot, principal, call, agent_id) if m not in plan]
        routed = Routed(detection, plan, decision, policy.name if policy else DEFAULT_POLICY, agent_id)
        if vector is not None:
            routed.prompt_vector = vector.tobytes()
        if self.observe is not None:
            self.observe(routed)
        return routed

    def decide(
        self,
        snapshot: Snapshot,
        principal: Principal,
        call: ChatCall,
        detection: TaskDetection,
        agent_id: str | None,
        policy: PolicyView | None,
        model_type: str,
        *,
        prompt_vector: Any = None,
    ) -> Decision:
        """Candidates -> filters -> scores (the part `explain` shows); ``prompt_vector``: the
        prompt's features, for the router's prompt memory."""
        if snapshot.shared_experience is not self._shared:  # the sharing setting changed: a rare event
            self.router.experience.set_shared(snapshot.shared_experience)
            self._shared = snapshot.shared_experience
        candidates, base_filtered = self._candidates(snapshot, principal, agent_id, policy, model_type)
        requirements = call.requirements
        required = set(detection.required_capabilities)
        required.update(c for c in requirements.get("capabilities") or () if isinstance(c, str))
        steering = (
            self.steer(snapshot, principal, agent_id, policy.name if policy else None) if self.steer else None
        )
        tradeoff = policy.cost_tradeoff if policy is not None else None
        if steering is not None and steering.tradeoff_factor != 1.0:  # a budget ahead of its pace
            base = self.router.config.cost_tradeoff if tradeoff is None else tradeoff
            tradeoff = base * steering.tradeoff_factor
        max_cost = requirements.get("max_cost_usd", requirements.get("max_cost"))
        if max_cost is None and policy is not None:
            max_cost = policy.max_cost_per_task
        request = RouteRequest(
            tenant_id=principal.tenant_id,
            agent_id=agent_id,
            task_type=detection.task_type,
            required_capabilities=frozenset(required),
            prompt_tokens=call.prompt_tokens,
            expected_output_tokens=int(
                call.body.get("max_tokens") or call.body.get("max_completion_tokens") or 200
            ),
            max_cost_usd=float(max_cost) if isinstance(max_cost, int | float) else None,
            min_quality=requirements.get("min_quality_score")
            if isinstance(requirements.get("min_quality_score"), int | float)
            else None,
            explore=_explore_allowed(snapshot, principal.tenant_id, agent_id),
            cost_tradeoff=tradeoff,
            task_mix=detection.task_mix,
            prompt_vector=prompt_vector,
        )
        tier_cut: list[str] = []
        if steering is not None and steering.tiers is not None:  # a steering budget is used up
            candidates, tier_cut = self._in_tiers(snapshot, candidates, steering.tiers)
        decision = self.router.rank(request, candidates, rng=self._rng)
        tenant = principal.tenant_id  # a model open for this tenant only is skipped for it alone
        tripped = [s.model_id for s in decision.ranked if self._breakers.is_open(s.model_id, tenant)]
        if tripped:
            decision.ranked = [s for s in decision.ranked if s.model_id not in tripped]
        decision.filtered = base_filtered + [(m, "circuit breaker open") for m in tripped] + decision.filtered
        if steering is not None:
            why = steering.why
            decision.filtered += [(m, why) for m in tier_cut]
            decision.reason = f"{decision.reason}; {why}" if decision.reason else why
        return decision

    def _in_tiers(
        self, snapshot: Snapshot, candidates: CandidateSet, tiers: frozenset[str]
    ) -> tuple[CandidateSet, list[str]]:
        """The candidates in ``tiers`` (a used-up downgrade or pause_expensive budget's), cut before
        ranking so that the decision's reason speaks of what is left; and the ids cut. Built once
        per candidate set and tiers, so the router's per-set caches keep working."""
        key = (candidates.uid, tiers)
        cached = self._tiered.get(key)
        if cached is not None and cached[0] is snapshot:
            return cached[1], cached[2]
        kept = CandidateSet(c for c in candidates if c.cost_tier in tiers)
        cut = [c.model_id for c in candidates if c.cost_tier not in tiers]
        if len(self._tiered) >= CACHE_SIZE:
            self._tiered.pop(next(iter(self._tiered)))
        self._tiered[key] = (snapshot, kept, cut)
        return kept, cut

    def _prompt_vector(self, call: ChatCall) -> Any:
        """The features of the newest user message, when the prompt memory is on (else None)."""
        if self.prompt_encoder is None:
            return None
        text = last_user_text(call.body)
        return prompt_features([text], self.prompt_encoder)[0] if text else None

    def _candidates(
        self,
        snapshot: Snapshot,
        principal: Principal,
        agent_id: str | None,
        policy: PolicyView | None,
        model_type: str,
    ) -> tuple[CandidateSet, list[tuple[str, str]]]:
        """The agent's candidate set, built once per snapshot, role set and policy, then reused."""
        key = (
            id(snapshot),
            principal.tenant_id,
            agent_id,
            principal.roles,
            policy.name if policy else None,
            model_type,
        )
        cached = self._cache.get(key)
        if cached is not None and cached[0] is snapshot:
            return cached[1], cached[2]
        filtered: list[tuple[str, str]] = []
        candidates: list[Candidate] = []
        for model, override in self._pool(snapshot, principal.tenant_id, agent_id, model_type):
            if not model.usable:
                filtered.append((model.id, "unavailable or disabled"))
            elif not allowed_by_capsule(snapshot, principal, model, agent_id):
                filtered.append((model.id, "not in the capsule's allowed_models for this role"))
            else:
                candidates.append(_candidate(model, override, policy))
        built = CandidateSet(candidates)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (snapshot, built, filtered)
        return built, filtered

    def _pool(
        self, snapshot: Snapshot, tenant_id: str, agent_id: str | None, model_type: str
    ) -> Iterable[tuple[ModelEntry, int | None]]:
        if agent_id is not None:
            for model_id, override in snapshot.agent_models.get((tenant_id, agent_id), {}).items():
                model = snapshot.models.get(model_id)
                if model is not None and model.model_type == model_type:
                    yield model, override
            return
        usable = sorted(
            (m for m in snapshot.models.values() if m.usable and m.model_type == model_type),
            key=lambda m: (-m.priority, m.id),
        )
        for model in usable[:NO_AGENT_CANDIDATES]:
            yield model, None

    def _policy(
        self, snapshot: Snapshot, task_type: str, tenant_id: str, agent_id: str | None
    ) -> PolicyView | None:
        name = snapshot.task_policies.get(task_type)
        if name is None and agent_id is not None:
            agent = snapshot.agents.get((tenant_id, agent_id))
            name = agent.default_policy if agent is not None else None
        return snapshot.policies.get(name or DEFAULT_POLICY)

    def _group(
        self,
        snapshot: Snapshot,
        principal: Principal,
        call: ChatCall,
        detection: TaskDetection,
        policy: PolicyView | None,
        agent_id: str | None,
        group: GroupEntry,
        model_type: str,
    ) -> Routed:
        """A deployment group named by the caller: its members in the strategy's order, then the
        caller's fallbacks."""
        chosen = plan_group(
            snapshot, principal, agent_id, group, model_type, self._breakers, self.load, self._rng
        )
        extra = self._fallbacks(snapshot, principal, call, agent_id, model_type)
        plan = chosen.members + [m for m in extra if m not in chosen.members]
        ranked = [_member(m) for m in chosen.members]
        decision = Decision(detection.task_type, ranked, chosen.filtered, chosen.reason)
        name = policy.name if policy else DEFAULT_POLICY
        return Routed(detection, plan, decision, name, agent_id, chosen.route)

    def named_plan(
        self, snapshot: Snapshot, principal: Principal, call: ChatCall, model_type: str
    ) -> tuple[list[ModelEntry], str | None]:
        """The named model (or group) and its fallbacks, checked like chat's: catalog, capsule, the
        agent's enabled models. Returns the plan and the agent the call is attributed to."""
        agent_id = self.agent_of(snapshot, principal, call)
        group = snapshot.groups.get(call.model or "")
        if group is not None:
            chosen = plan_group(
                snapshot, principal, agent_id, group, model_type, self._breakers, self.load, self._rng
            )
            extra = self._fallbacks(snapshot, principal, call, agent_id, model_type)
            return chosen.members + [m for m in extra if m not in chosen.members], agent_id
        plan = build_plan(snapshot, principal, call.model or "", call.fallbacks, model_type, agent_id)
        self._check_enabled(snapshot, principal.tenant_id, agent_id, plan)
        return plan, agent_id

    def _check_enabled(
        self, snapshot: Snapshot, tenant_id: str, agent_id: str | None, plan: list[ModelEntry]
    ) -> None:
        if agent_id is None:
            return
        enabled = snapshot.agent_models.get((tenant_id, agent_id), {})
        for index, model in enumerate(plan):
            if model.id not in enabled:
                param = "model" if index == 0 else f"fallbacks[{index - 1}]"
                raise Forbidden(
                    f"model '{model.id}' is not enabled for agent '{agent_id}'",
                    param=param,
                    code="model_not_allowed",
                )

    def _fallbacks(
        self,
        snapshot: Snapshot,
        principal: Principal,
        call: ChatCall,
        agent_id: str | None,
        model_type: str = "chat",
    ) -> list[ModelEntry]:
        if not call.fallbacks:
            return []
        plan = build_plan(snapshot, principal, call.fallbacks[0], call.fallbacks[1:], model_type, agent_id)
        self._check_enabled(snapshot, principal.tenant_id, agent_id, plan)
        return plan

    def _default(
        self,
        snapshot: Snapshot,
        detection: TaskDetection,
        policy: PolicyView | None,
        agent_id: str | None,
        exc: Exception,
    ) -> Routed:
        model = snapshot.resolve_model(self._default_model) if self._default_model else None
        if model is None or not model.usable:
            raise InvalidRequest("routing failed and no default model is configured", param="model") from exc
        decision = Decision(
            detection.task_type,
            [_explicit(model)],
            reason=f"router failed ({type(exc).__name__}); default model",
        )
        return Routed(detection, [model], decision, policy.name if policy else DEFAULT_POLICY, agent_id)


def _candidate(model: ModelEntry, override: int | None, policy: PolicyView | None) -> Candidate:
    priority = override if override is not None else model.priority
    if policy is not None and policy.model_priority:
        preferred = policy.model_priority.get(model.id, policy.model_priority.get(model.external_id))
        if preferred is not None:
            priority = max(priority, preferred)
    return Candidate(
        model.id,
        model.provider_id,
        model.capabilities,
        priority,
        model.cost_tier,
        model.ctx_length,
        model.pricing_input,
        model.pricing_output,
    )


def _explicit(model: ModelEntry) -> ScoredCandidate:
    return ScoredCandidate(model.id, 1.0, 0.0, 0.0, None, 0.0, "explicit", None, None, 0.0)


def _member(model: ModelEntry) -> ScoredCandidate:
    return ScoredCandidate(model.id, 1.0, 0.0, 0.0, None, 0.0, "group", None, None, 0.0)


def _explore_allowed(snapshot: Snapshot, tenant_id: str, agent_id: str | None) -> bool:
    if agent_id is None:
        return True
    agent = snapshot.agents.get((tenant_id, agent_id))
    routing = agent.capsule.get("routing") if agent is not None else None
    return not (isinstance(routing, dict) and routing.get("explore") is False)
