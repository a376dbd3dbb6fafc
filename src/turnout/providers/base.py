"""The contract between the gateway and the provider adapters.

The gateway's canonical shapes are OpenAI's Chat Completions ones:
- request: an OpenAI ``/v1/chat/completions`` body (dict), ``model`` still the catalog id;
- response: an OpenAI ``chat.completion`` object (dict);
- stream: OpenAI ``chat.completion.chunk`` objects (dicts); the last one may carry ``usage``.
Adapters translate the canonical shapes to and from their provider's wire format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from turnout.errors import TurnoutError


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: a catalog model at its provider, with the key to use."""

    model_id: str  # catalog id, e.g. "openrouter/openai/gpt-4o"
    external_id: str  # the provider's own id, e.g. "openai/gpt-4o"
    provider_id: str
    provider_type: str  # openai | openrouter | anthropic | azure | ollama | custom
    api_base: str
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None  # Azure api-version


@dataclass(slots=True)
class UpstreamRequest:
    """One HTTP request to send to a provider."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class ProviderError(TurnoutError):
    """A provider answered with an error; status and message mapped to the OpenAI shape.

    ``retryable`` marks 429/5xx/timeouts; ``retry_after_s`` carries the provider's Retry-After.
    The provider's message is kept; its key never appears.
    """

    error_type = "api_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.status_code = status
        if error_type is not None:
            self.error_type = error_type
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class StreamDecoder(Protocol):
    """Turns a provider's streamed bytes into canonical chunk dicts, incrementally."""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Consume the next bytes (any split); return the complete chunks they finish."""
        ...

    def finish(self) -> list[dict[str, Any]]:
        """End of stream: flush what remains; raise ProviderError if the stream ended mid-way
        (no terminal event: no ``[DONE]`` / ``message_stop`` / ``done: true``)."""
        ...


class ChatAdapter(Protocol):
    """One provider wire format."""

    def chat_request(self, target: Target, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        """Build the provider request from a canonical body (``model`` becomes ``target.external_id``).
        With ``stream``, ask the provider for usage in the stream when it supports that."""
        ...

    def chat_response(self, target: Target, payload: bytes) -> dict[str, Any]:
        """Provider success body -> canonical ``chat.completion`` (``model`` = ``target.model_id``)."""
        ...

    def stream_decoder(self, target: Target) -> StreamDecoder:
        """A fresh decoder for one streamed response."""
        ...

    def embeddings_request(self, target: Target, body: dict[str, Any]) -> UpstreamRequest:
        """Canonical OpenAI ``/v1/embeddings`` body -> provider request."""
        ...

    def embeddings_response(self, target: Target, payload: bytes) -> dict[str, Any]:
        """Provider body -> canonical OpenAI embeddings response (``object: list``, ``data``, ``usage``)."""
        ...

    def error(self, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """Provider error answer -> ProviderError with the right status, type and retry hints."""
        ...
