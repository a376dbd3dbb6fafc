"""Bodies of the budget and rate-limit endpoints: strict about types (``true`` is no amount, ``"5"``
no rate), as the catalog admin API is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scope = Literal["global", "tenant", "agent", "api_key", "model", "policy"]
PeriodName = Literal["daily", "weekly", "monthly", "total"]
ActionName = Literal["block", "downgrade", "pause_expensive"]
LimitScope = Literal["tenant", "agent", "api_key"]


class BudgetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    name: str = Field(min_length=1, max_length=200)
    scope: Scope
    scope_id: str | None = Field(
        default=None,
        max_length=512,
        description="the tenant, agent, API key (its id), model (catalog id) or policy name; none for "
        "global; defaults to the caller's tenant for scope tenant",
    )
    period: PeriodName
    amount_usd: float = Field(gt=0, le=1e9, allow_inf_nan=False, description="USD per period")
    alert_threshold: float = Field(
        default=0.8, gt=0, le=1, allow_inf_nan=False, description="share of the amount that raises an alert"
    )
    action: ActionName = "block"


class BudgetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    period: PeriodName | None = None
    amount_usd: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)
    alert_threshold: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    action: ActionName | None = None


class BudgetOut(BaseModel):
    id: str
    name: str
    tenant_id: str | None
    scope: str
    scope_id: str | None
    period: str
    amount_usd: float
    alert_threshold: float
    action: str
    spent_usd: float | None = None
    reserved_usd: float | None = None
    remaining_usd: float | None = None
    period_start: str | None = None
    period_end: str | None = Field(default=None, description="when it resets (none for period total)")
    ledger: str = Field(default="ok", description="ok, or unavailable when Redis could not be read")


class BudgetList(BaseModel):
    items: list[BudgetOut]


class LimitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    scope: LimitScope
    scope_id: str | None = Field(default=None, max_length=64, description="defaults to the caller's tenant")
    rpm: int | None = Field(default=None, ge=1, le=10_000_000, description="requests per minute")
    tpm: int | None = Field(default=None, ge=1, le=10_000_000_000, description="tokens per minute")
    max_concurrent: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _some_limit(self) -> LimitCreate:
        if self.rpm is None and self.tpm is None and self.max_concurrent is None:
            raise ValueError("set at least one of rpm, tpm, max_concurrent")
        return self


class LimitUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    rpm: int | None = Field(default=None, ge=1, le=10_000_000)
    tpm: int | None = Field(default=None, ge=1, le=10_000_000_000)
    max_concurrent: int | None = Field(default=None, ge=1, le=1_000_000)


class LimitOut(BaseModel):
    id: str
    tenant_id: str
    scope: str
    scope_id: str
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None


class LimitList(BaseModel):
    items: list[LimitOut]
