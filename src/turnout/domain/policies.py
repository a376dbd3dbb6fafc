"""Routing policies (normal, deep_research, code, ops, ...): their settings, the view the snapshot
holds of each, and the default task -> policy map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    is_active: bool = True


class PolicyIn(PolicyBody):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,49}$")


class PolicyOut(PolicyIn):
    pass


@dataclass(frozen=True, slots=True)
class PolicyView:
    """What routing reads from a policy."""

    name: str
    model_priority: dict[str, int]
    max_cost_per_task: float | None
    max_tokens: int | None
    temperature: float | None


def view_of(name: str, config: dict[str, Any]) -> PolicyView:
    body = PolicyBody.model_validate({k: v for k, v in config.items() if k != "name"})
    return PolicyView(
        name=name,
        model_priority={m.model: m.priority for m in body.models},
        max_cost_per_task=body.max_cost_per_task,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
    )


def apply_policy_defaults(body: ChatRequest, policy: PolicyView | None) -> None:
    """A policy's ``max_tokens`` and ``temperature`` fill in what the request left unset."""
    if policy is None:
        return
    if policy.max_tokens is not None and "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = policy.max_tokens
    if policy.temperature is not None and "temperature" not in body:
        body["temperature"] = policy.temperature
