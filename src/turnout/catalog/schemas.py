"""Request and response bodies of the catalog admin API (pydantic, strict about input)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from turnout.jsontypes import JsonObject
from turnout.providers.registry import PROVIDER_TYPES

if TYPE_CHECKING:  # a Literal built at run time is opaque to mypy
    ProviderType = str
else:  # the registered types: validation, the 400 that lists them and the OpenAPI enum
    ProviderType = Literal[PROVIDER_TYPES]
Capability = Literal["text", "vision", "code", "audio", "long_context", "function_calling"]
CostTier = Literal["free", "low", "standard", "premium"]
ModelType = Literal["chat", "embedding"]
Price = Annotated[Decimal, Field(ge=0, le=Decimal("1000000"), max_digits=14, decimal_places=6)]
Priority = Annotated[int, Field(ge=0, le=100)]
Domain = Annotated[str, Field(min_length=1, max_length=50)]

PROVIDER_ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,49}$"
ALIAS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"  # no "/": an alias never looks like a catalog id
EXTERNAL_ID_MAX = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def external_id_problem(value: str) -> str | None:
    """Why a provider's model id cannot be carried, or ``None``. Ids travel in the
    ``x-turnout-model`` response header (Latin-1, no CR/LF or other controls) and in a 255-character
    column; one rule for synced and hand-made models."""
    if not value:
        return "empty"
    if len(value) > EXTERNAL_ID_MAX:
        return f"longer than {EXTERNAL_ID_MAX} characters"
    if _CONTROL.search(value):
        return "contains control characters"
    if not value.isascii() and max(map(ord, value)) > 0xFF:
        return "contains characters outside Latin-1"
    return None


DEFAULT_PRICE_DOC = (
    "USD per 1M tokens every model this provider syncs gets (hand-set model prices still win); "
    "null: the price the provider reports or genai-prices knows, or 0 when self-hosted"
)
SELF_HOSTED_DOC = (
    "models of a self-hosted provider sync at price 0 (free) unless default prices are set; "
    "null: detected (Ollama, or an OpenAI-compatible server on localhost, a loopback or private "
    "address, or a single-label host name such as a Docker service)"
)
PRICE_ID_DOC = (
    "the genai-prices provider (`groq`, `mistral`, `together`, ...) whose list prices the models "
    "this provider does not price itself; null: its type's"
)
PriceId = Annotated[
    str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_.\-]*$", description=PRICE_ID_DOC)
]
RESERVED_MODEL_NAMES = frozenset({"auto"})  # "auto" asks the router to choose
CREDENTIALS_DOC = (
    'the provider\'s secret fields, e.g. {"api_key": "..."}; which fields a type takes is its '
    "spec's credential schema. Stored in the secret store only; `api_key` is the short form"
)
SecretField = Annotated[SecretStr, Field(min_length=1, max_length=8192)]
#: The most credential fields a body may send; no type's credential schema has more.
CREDENTIALS_MAX = 16
Credentials = Annotated[
    dict[str, SecretField], Field(min_length=1, max_length=CREDENTIALS_MAX, description=CREDENTIALS_DOC)
]


def _not_reserved(value: str) -> str:
    if value in RESERVED_MODEL_NAMES:
        raise ValueError(f"'{value}' is reserved")
    return value


Alias = Annotated[
    str,
    AfterValidator(_not_reserved),
    Field(
        pattern=ALIAS_PATTERN,
        description="a name clients may send as `model` and see in listings and answers",
    ),
]


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
    credentials: Credentials | None = None
    api_version: str | None = Field(default=None, max_length=40)
    rate_limit_rpm: int | None = Field(default=None, ge=1, le=1_000_000)
    default_price_input: Price | None = Field(default=None, description=DEFAULT_PRICE_DOC)
    default_price_output: Price | None = Field(default=None, description=DEFAULT_PRICE_DOC)
    self_hosted: bool | None = Field(default=None, description=SELF_HOSTED_DOC)
    price_id: PriceId | None = None


class ProviderUpdate(StrictBody):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    api_base: str | None = Field(default=None, min_length=1, max_length=255)
    models_endpoint: str | None = Field(default=None, max_length=255)
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    credentials: Credentials | None = None
    api_version: str | None = Field(default=None, max_length=40)
    rate_limit_rpm: int | None = Field(default=None, ge=1, le=1_000_000)
    default_price_input: Price | None = Field(default=None, description=DEFAULT_PRICE_DOC)
    default_price_output: Price | None = Field(default=None, description=DEFAULT_PRICE_DOC)
    self_hosted: bool | None = Field(default=None, description=SELF_HOSTED_DOC)
    price_id: PriceId | None = None
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
    default_price_input: float | None
    default_price_output: float | None
    self_hosted: bool | None = Field(description="as set; null: detected from type and address")
    is_self_hosted: bool = Field(description="whether syncs price this provider's models as self-hosted")
    price_id: str | None = Field(default=None, description="as set; null: its type's")
    pricing_source: str | None = Field(
        default=None,
        description="the genai-prices provider its models are priced from; null: guessed per model",
    )
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


REGION_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"  # it goes into a host name: letters, digits, dashes


class ProviderFromTemplate(StrictBody):
    """What an admin adds to a template: the rest comes from it (see ``catalog/templates.py``)."""

    id: str | None = Field(
        default=None, pattern=PROVIDER_ID_PATTERN, description="default: the template's id"
    )
    display_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="default: the template's name"
    )
    api_base: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="an http(s) URL, required where the template's URL is per resource (Azure, "
        "Hugging Face endpoints); elsewhere it replaces the template's (e.g. Ollama on another host)",
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=REGION_PATTERN,
        description="e.g. us-east-1 (Bedrock)",
    )
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    credentials: Credentials | None = None
    api_version: str | None = Field(default=None, max_length=40)
    rate_limit_rpm: int | None = Field(default=None, ge=1, le=1_000_000)
    default_price_input: Price | None = Field(default=None, description=DEFAULT_PRICE_DOC)
    default_price_output: Price | None = Field(default=None, description=DEFAULT_PRICE_DOC)
    self_hosted: bool | None = Field(
        default=None, description="default: the template's (true for servers you run, false for hosted APIs)"
    )

    @field_validator("api_base")
    @classmethod
    def _not_only_slashes(cls, value: str | None) -> str | None:
        """Refused here, naming it: the template strips a trailing slash, which would leave "/" an
        empty base (or a bare suffix) that fails later with a message about a value never sent."""
        if value is not None and not value.rstrip("/"):
            raise ValueError(f"must be an http or https URL, not {value!r}")
        return value


class ProviderTemplateOut(BaseModel):
    id: str
    display_name: str
    provider_type: str
    api_base: str | None = Field(
        description="the default base URL ({region}: from `region`); null: give api_base"
    )
    api_base_example: str | None
    requires: list[str] = Field(description="the parameters a caller must give")
    price_id: str | None = Field(description="the genai-prices provider its models are priced from")
    self_hosted: bool
    docs_url: str = Field(description="where its keys are made, or how the server is set up")
    credential_fields: list[str] = Field(
        description="the credential fields its type takes (empty: unavailable)"
    )
    credential_required: list[str]
    available: bool = Field(description="false: its provider type is not registered in this Turnout")
    unavailable_reason: str | None = None
    note: str | None = None


class ProviderTemplateList(BaseModel):
    items: list[ProviderTemplateOut]
    total: int


class SyncResult(BaseModel):
    provider_id: str
    models_discovered: int
    models_added: int
    models_updated: int
    models_removed: int
    models_unchanged: int
    models_skipped: int = Field(default=0, description="listed with an id Turnout cannot carry; not stored")
    skipped: list[str] = Field(default_factory=list, description="the first skipped ids, with the reason")
    synced_at: datetime
    duration_ms: int


class ConnectionTest(BaseModel):
    provider_id: str
    ok: bool
    latency_ms: int
    models_found: int | None = None
    status: int | None = None
    error: str | None = None


CACHE_PRICE_DOC = (
    "USD per 1M cached-prompt tokens read (pricing_cache_read) or written (pricing_cache_write); "
    "null: billed at pricing_input"
)


class ModelCreate(StrictBody):
    provider_id: str = Field(pattern=PROVIDER_ID_PATTERN)
    external_id: str = Field(min_length=1, max_length=EXTERNAL_ID_MAX)
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    model_type: ModelType = "chat"
    capabilities: list[Capability] = Field(default=["text"], max_length=6)
    priority: Priority = 50
    cost_tier: CostTier | None = None
    domains: list[Domain] = Field(default_factory=list, max_length=50)
    ctx_length: int | None = Field(default=None, ge=1, le=100_000_000)
    pricing_input: Price | None = None
    pricing_output: Price | None = None
    pricing_cache_read: Price | None = Field(default=None, description=CACHE_PRICE_DOC)
    pricing_cache_write: Price | None = Field(default=None, description=CACHE_PRICE_DOC)
    alias: Alias | None = None
    metadata: JsonObject = Field(default_factory=dict)

    @field_validator("external_id")
    @classmethod
    def _carriable(cls, value: str) -> str:
        problem = external_id_problem(value)
        if problem is not None:
            raise ValueError(f"external_id {problem}")
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
    pricing_cache_read: Price | None = Field(default=None, description=CACHE_PRICE_DOC)
    pricing_cache_write: Price | None = Field(default=None, description=CACHE_PRICE_DOC)
    alias: Alias | None = None
    is_enabled: bool | None = None


class ModelOut(BaseModel):
    id: str
    provider_id: str
    external_id: str
    alias: str | None
    display_name: str
    model_type: str
    capabilities: list[str]
    priority: int
    cost_tier: str
    domains: list[str]
    ctx_length: int | None
    pricing_input: float | None
    pricing_output: float | None
    pricing_cache_read: float | None
    pricing_cache_write: float | None
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
