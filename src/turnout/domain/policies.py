"""Routing policies (normal, deep_research, code, ops, ...): their settings, the view the snapshot
holds of each, and the default task -> policy map. Also the response cache's setting, which a
policy and an agent both carry (the agent's wins)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from turnout.translate.types import ChatRequest

DEFAULT_POLICY = "normal"
DEFAULT_TASK_POLICIES: dict[str, str] = {
    "code": "code",
    "research": "deep_research",
    "analysis": "normal",
    "reasoning": "deep_research",
    "math": "deep_research",
    "summarization": "ops",
    "translation": "ops",
    "general": "normal",
}

# The quality each default policy pays per doubling of a request's estimated cost (the router
# maximises expected quality minus this times log2(cost / the cheapest candidate's)): deep research
# takes quality at almost any price, ops the cheapest acceptable model; code and normal in between.
# Set a priori from what each policy is for, not fitted to any evaluation table; a policy's own
# ``cost_tradeoff`` overrides it, and a policy of another name without one gets the router's default.
COST_TRADEOFFS: dict[str, float] = {"deep_research": 0.002, "code": 0.01, "normal": 0.02, "ops": 0.08}

MAX_CACHE_TTL_S = 30 * 24 * 3600


class CacheSettings(BaseModel):
    """The exact-match response cache of an agent or a policy: answers kept ``ttl_s`` seconds.
    Sampled requests (``temperature`` above 0, or absent: OpenAI's default is 1) vary by design,
    so they are cached only with ``include_sampled``. ``enabled: false`` on an agent turns off
    a policy's cache for it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, strict=True)
    ttl_s: int = Field(default=300, ge=1, le=MAX_CACHE_TTL_S, strict=True, description="seconds kept")
    include_sampled: bool = Field(
        default=False, strict=True, description="also cache requests with temperature > 0 (or unset)"
    )


@dataclass(frozen=True, slots=True)
class CacheRule:
    """What the data plane reads of a ``CacheSettings`` (``enabled`` false: do not cache)."""

    ttl_s: int
    include_sampled: bool
    enabled: bool = True


def cache_rule(settings: CacheSettings | None) -> CacheRule | None:
    return None if settings is None else CacheRule(settings.ttl_s, settings.include_sampled, settings.enabled)


def stored_cache_rule(raw: dict[str, Any] | None) -> CacheRule | None:
    """An agent's stored ``response_cache`` as a rule; a value that no longer validates caches
    nothing rather than failing the snapshot it is read into."""
    if raw is None:
        return None
    try:
        return cache_rule(CacheSettings.model_validate(raw))
    except ValidationError:
        return CacheRule(1, False, enabled=False)


class PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=512, description="catalog id or a provider's model id")
    priority: int = Field(ge=0, le=100)


class PolicyBody(BaseModel):
    """A policy's settings: preferred models and limits applied to requests that use it."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=500)
    models: list[PolicyModel] = Field(default_factory=list, max_length=200)
    max_cost_per_task: float | None = Field(default=None, ge=0, le=10_000)
    max_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    cost_tradeoff: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="quality (0-1) a pricier model must add per doubling of the request's cost; "
        "unset: the policy name's default (deep_research 0.002, code 0.01, normal 0.02, ops 0.08)",
    )
    cache: CacheSettings | None = Field(
        default=None, description="cache the answers of calls this policy routes (an agent's own wins)"
    )
    is_active: bool = True


class PolicyIn(PolicyBody):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,49}$")


class PolicyOut(PolicyIn):
    effective_cost_tradeoff: float = Field(
        description="the trade-off routing uses: cost_tradeoff, else the policy name's default, else "
        "the gateway's (TURNOUT_ROUTING_COST_TRADEOFF)"
    )


@dataclass(frozen=True, slots=True)
class PolicyView:
    """What routing reads from a policy."""

    name: str
    model_priority: dict[str, int]
    max_cost_per_task: float | None
    max_tokens: int | None
    temperature: float | None
    cache: CacheRule | None = None  # None: not cached (unless the agent says otherwise)
    cost_tradeoff: float | None = None  # None: the router's default


def view_of(name: str, config: dict[str, Any]) -> PolicyView:
    body = PolicyBody.model_validate({k: v for k, v in config.items() if k != "name"})
    return PolicyView(
        name=name,
        model_priority={m.model: m.priority for m in body.models},
        max_cost_per_task=body.max_cost_per_task,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        cache=cache_rule(body.cache) if body.cache is not None and body.cache.enabled else None,
        cost_tradeoff=body.cost_tradeoff if body.cost_tradeoff is not None else COST_TRADEOFFS.get(name),
    )


def apply_policy_defaults(body: ChatRequest, policy: PolicyView | None) -> None:
    """A policy's ``max_tokens`` and ``temperature`` fill in what the request left unset."""
    if policy is None:
        return
    if policy.max_tokens is not None and "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = policy.max_tokens
    if policy.temperature is not None and "temperature" not in body:
        body["temperature"] = policy.temperature
