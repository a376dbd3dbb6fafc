"""Request and response bodies of the catalog admin API (pydantic, strict about input)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from turnout.jsontypes import JsonObject

ProviderType = Literal["openai", "openrouter", "anthropic", "azure", "ollama", "custom"]
Capability = Literal["text", "vision", "code", "audio", "long_context", "function_calling"]
CostTier = Literal["free", "low", "standard", "premium"]
ModelType = Literal["chat", "embedding"]
Price = Annotated[Decimal, Field(ge=0, le=Decimal("1000000"), max_digits=14, decimal_places=6)]
Priority = Annotated[int, Field(ge=0, le=100)]
Domain = Annotated[str, Field(min_length=1, max_length=50)]

PROVIDER_ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,49}$"


class StrictBody(BaseModel):
    """Bodies refuse unknown fields, so typos are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProviderCreate(StrictBody):
    id: str = Field(pattern=PROVIDER_ID_PATTERN, description="slug, e.g. 'openrouter'")
    display_name: str = Field(min_length=1, max_length=100)
    provider_type: ProviderType
    api_base: str = Field(min_length=1, max_length=255)
    models_endpoint: str | None = Field(default=None, max_length=255)
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    api_version: str | None = Field(default=None, max_length=40)
    rate_limit_rpm: int | None = Field(default=None, ge=1, le=1_000_000)


class ProviderUpdate(StrictBody):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    api_base: str | None = Field(default=None, min_length=1, max_length=255)
    models_endpoint: str | None = Field(default=None, max_length=255)
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    api_version: str | None = Field(default=None, max_length=40)
    rate_limit_rpm: int | None = Field(default=None, ge=1, le=1_000_000)
    is_active: bool | None = None


class ProviderOut(BaseModel):
    id: str
    display_name: str
    provider_type: str
    api_base: str
    models_endpoint: str | None
    api_key_ref: str | None
    api_key_hint: str | None
    api_version: str | None
    rate_limit_rpm: int | None
    is_active: bool
    model_count: int = 0
    last_synced: datetime | None
    last_sync_error: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class ProviderList(BaseModel):
    items: list[ProviderOut]
    total: int


class SyncResult(BaseModel):
    provider_id: str
    models_discovered: int
    models_added: int
    models_updated: int
    models_removed: int
    models_unchanged: int
    synced_at: datetime
    duration_ms: int


class ConnectionTest(BaseModel):
    provider_id: str
    ok: bool
    latency_ms: int
    models_found: int | None = None
    status: int | None = None
    error: str | None = None


class ModelCreate(StrictBody):
    provider_id: str = Field(pattern=PROVIDER_ID_PATTERN)
    external_id: str = Field(min_length=1, max_length=255)
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    model_type: ModelType = "chat"
    capabilities: list[Capability] = Field(default=["text"], max_length=6)
    priority: Priority = 50
    cost_tier: CostTier | None = None
    domains: list[Domain] = Field(default_factory=list, max_length=50)
    ctx_length: int | None = Field(default=None, ge=1, le=100_000_000)
    pricing_input: Price | None = None
    pricing_output: Price | None = None
    metadata: JsonObject = Field(default_factory=dict)

    @field_validator("external_id")
    @classmethod
    def _no_control_chars(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("external_id must not contain control characters")
        return value


class ModelUpdate(StrictBody):
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    model_type: ModelType | None = None
    capabilities: list[Capability] | None = Field(default=None, max_length=6)
    priority: Priority | None = None
    cost_tier: CostTier | None = None
    domains: list[Domain] | None = Field(default=None, max_length=50)
    ctx_length: int | None = Field(default=None, ge=1, le=100_000_000)
    pricing_input: Price | None = None
    pricing_output: Price | None = None
    is_enabled: bool | None = None


class ModelOut(BaseModel):
    id: str
    provider_id: str
    external_id: str
    display_name: str
    model_type: str
    capabilities: list[str]
    priority: int
    cost_tier: str
    domains: list[str]
    ctx_length: int | None
    pricing_input: float | None
    pricing_output: float | None
    is_available: bool
    is_enabled: bool
    is_custom: bool
    overrides: list[str]
    synced_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ModelDetail(ModelOut):
    metadata: dict[str, Any]


class ModelPage(BaseModel):
    items: list[ModelOut]
    total: int
    page: int
    per_page: int


class ModelFilter(StrictBody):
    """Filters shared by the list and bulk endpoints; capabilities must all be present."""

    provider: str | None = Field(default=None, max_length=50)
    cost_tier: CostTier | None = None
    capability: list[Capability] = Field(default_factory=list)
    model_type: ModelType | None = None
    available: bool | None = None
    enabled: bool | None = None
    q: str | None = Field(default=None, min_length=1, max_length=200)


class BulkModelUpdate(StrictBody):
    filter: ModelFilter
    is_enabled: bool


class BulkResult(BaseModel):
    matched: int
    changed: int
    is_enabled: bool
