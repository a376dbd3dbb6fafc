"""The request types the data plane passes down: a validated call in canonical form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from turnout.tokens import estimate_prompt_tokens
from turnout.translate.passthrough import NativeBody
from turnout.translate.types import ChatRequest, EmbeddingsRequest

Body = TypeVar("Body", ChatRequest, EmbeddingsRequest)
# a caller's own id of a call (``X-Client-Request-Id``): printable ASCII, as OpenAI asks of it
CLIENT_ID_CHARS = re.compile(r"^[\x20-\x7e]{1,512}$")


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
    _prompt_tokens: int | None = None
    # the client's body in its own format, passed on to a provider that speaks it (else None)
    native: NativeBody | None = None
    # the caller's own id for the call (``X-Client-Request-Id``): known before the answer, so a
    # call can be cancelled by it, and kept on its record
    client_request_id: str | None = None
    # estimated tokens of what only ``native`` holds (an Anthropic client's PDF documents, a server
    # tool's results): the canonical body has a placeholder where they were
    native_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """The prompt's estimated tokens, counted once (routing and the spend guard both read it)."""
        if self._prompt_tokens is None:
            self._prompt_tokens = estimate_prompt_tokens(self.body) + self.native_tokens
        return self._prompt_tokens
