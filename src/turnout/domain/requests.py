"""The request types the data plane passes down: a validated call in canonical form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from turnout.translate.types import ChatRequest, EmbeddingsRequest

Body = TypeVar("Body", ChatRequest, EmbeddingsRequest)


@dataclass(slots=True)
class ChatCall(Generic[Body]):
    """A validated request in canonical (OpenAI) form plus Turnout's extensions: a chat
    (``ChatCall[ChatRequest]``) or an embeddings call (``ChatCall[EmbeddingsRequest]``)."""

    body: Body
    model: str | None
    fallbacks: list[str]
    stream: bool
    include_usage: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    task_type: str | None = None
    requirements: dict[str, Any] = field(default_factory=dict)
