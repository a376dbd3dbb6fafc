"""Shared types of the routing step (detection -> candidates -> filters -> scores -> ranked list)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DetectionSource = Literal["explicit", "tool", "attachment", "evaluation", "keyword", "classifier", "default"]


@dataclass(frozen=True, slots=True)
class TaskDetection:
    """The detected task type, where it came from and how sure we are (0..1)."""

    task_type: str
    source: DetectionSource
    confidence: float
    tools_used: tuple[str, ...] = ()
    required_capabilities: frozenset[str] = frozenset()
    # other tasks the request may be, with their probabilities (see ``RouteRequest.task_mix``)
    task_mix: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model the router may choose: catalog facts plus the agent's priority override applied."""

    model_id: str
    provider_id: str
    capabilities: frozenset[str]
    priority: int  # 0..100, the agent's priority_override when set
    cost_tier: str
    ctx_length: int | None
    pricing_input: float | None  # USD per 1M tokens
    pricing_output: float | None


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What the router needs to know about one request."""

    tenant_id: str
    agent_id: str | None
    task_type: str
    required_capabilities: frozenset[str] = frozenset()
    prompt_tokens: int = 0
    expected_output_tokens: int = 200
    max_cost_usd: float | None = None
    min_quality: float | None = None
    explore: bool = True
    cost_tradeoff: float | None = None  # quality per doubling of cost (the policy's); None: the router's
    # the other tasks the request may be, with their probabilities (``task_type``'s is 1 - their sum):
    # the router weighs each task's experience by them instead of betting on the likeliest alone
    task_mix: tuple[tuple[str, float], ...] = ()
    # the prompt's features (``prompt_memory.prompt_features``): its most similar rated prompts
    # adjust the task's estimates; None without the word vectors or a memory
    prompt_vector: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    """One ranked model with the parts of its score, for the decision log."""

    model_id: str
    score: float
    priority_part: float
    experience_part: float
    experience: float | None  # posterior mean quality, None without data
    evidence: float  # effective number of ratings behind ``experience``
    level: str  # where the evidence came from: "agent", "tenant", "global", "prior"
    sampled: float | None  # the exploration draw, when exploring
    est_cost_usd: float | None
    penalty: float  # error-rate / latency penalty subtracted


@dataclass(slots=True)
class Decision:
    """The router's answer: a ranked list, what was filtered out and why, and a one-line reason."""

    task_type: str
    ranked: list[ScoredCandidate]
    filtered: list[tuple[str, str]] = field(default_factory=list)  # (model_id, reason)
    reason: str = ""
    explored: bool = False


@dataclass(frozen=True, slots=True)
class MemberState:
    """One deployment-group member as routing saw it, for the decision log."""

    model_id: str
    weight: float
    in_flight: int  # this process's requests to it
    latency_ms: float | None  # its latency EWMA, None before the first measurement
    health: str  # "up", "probe" (its cooldown is over: this request probes it), "down" (cooling down)


@dataclass(slots=True)
class GroupRoute:
    """A request named a deployment group: the group, its strategy, its members in plan order."""

    name: str
    strategy: str
    members: list[MemberState]
