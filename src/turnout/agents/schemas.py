"""Bodies of the agent and API-key endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from turnout.domain.policies import CacheSettings
from turnout.jsontypes import JsonObject

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, pattern=AGENT_ID_PATTERN, description="generated when omitted")
    name: str = Field(min_length=1, max_length=200)
    capsule: JsonObject = Field(default_factory=dict)
    default_policy: str | None = Field(default=None, max_length=50)
    response_cache: CacheSettings | None = Field(
        default=None, description="cache this agent's answers (wins over its policy's cache setting)"
    )


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    capsule: JsonObject | None = None
    default_policy: str | None = Field(default=None, max_length=50)
    response_cache: CacheSettings | None = Field(
        default=None, description="replaces the agent's cache setting; null: its policy's applies"
    )
    is_active: bool | None = Field(
        default=None, description="false: the agent is refused everywhere until set true again"
    )

    @field_validator("is_active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must be true or false")
        return value


class AgentOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    capsule: dict[str, Any]
    default_policy: str | None
    response_cache: CacheSettings | None = None
    is_active: bool
    created_by: str | None
    created_at: datetime


class AgentList(BaseModel):
    items: list[AgentOut]
    total: int


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)


class KeyOut(BaseModel):
    id: str
    agent_id: str
    name: str | None
    hint: str
    revoked_at: datetime | None
    created_at: datetime


class KeyIssued(KeyOut):
    key: str = Field(description="the API key; shown only once")


class KeyList(BaseModel):
    items: list[KeyOut]
    total: int
