"""The contract between the gateway and the provider adapters.

The gateway's canonical shapes are OpenAI's Chat Completions ones, typed in ``turnout.translate.types``:
- request: ``ChatRequest``, an OpenAI ``/v1/chat/completions`` body, ``model`` still the catalog id;
- response: ``Completion``, an OpenAI ``chat.completion`` object;
- stream: ``Chunk``s, OpenAI ``chat.completion.chunk`` objects; the last one may carry ``usage``.
An adapter is the transport of one wire format: the URL, the auth headers and signing of its
requests, and which translation (``turnout.translate``) turns the canonical shapes into its wire
format and back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from turnout.providers.credentials import NO_CREDENTIALS, Credentials
from turnout.translate.errors import ProviderError
from turnout.translate.passthrough import NativeBody
from turnout.translate.types import ChatRequest, Chunk, Completion, EmbeddingsRequest, EmbeddingsResponse

__all__ = [
    "ChatAdapter",
    "NativeAdapter",
    "ProviderError",
    "Signer",
    "StreamDecoder",
    "Target",
    "UpstreamRequest",
]


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: a catalog model at its provider, with the credential to use."""

    model_id: str  # catalog id, e.g. "openrouter/openai/gpt-4o"
    external_id: str  # the provider's own id, e.g. "openai/gpt-4o"
    provider_id: str
    provider_type: str  # a registered spec's type: openai | openrouter | anthropic | azure | ...
    api_base: str
    credentials: Credentials = field(default=NO_CREDENTIALS, repr=False)
    api_version: str | None = None  # e.g. Azure's api-version; None: the spec's default


@dataclass(slots=True)
class UpstreamRequest:
    """One HTTP request to send to a provider."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    native: bool = False  # the body is the client's own (``NativeAdapter.native_request``)
    #: decodes the answer for the record when it is not in the adapter's own format (a passed-through
    #: Responses API request to an OpenAI-compatible provider): ``chat_response`` and
    #: ``stream_decoder`` as a ``ChatAdapter`` has them; None: the adapter's
    decoding: Any = None


#: ``sign(request, credentials)``: sign a finished request in place (AWS SigV4, a fresh OAuth token).
Signer = Callable[[UpstreamRequest, Credentials], None]


class StreamDecoder(Protocol):
    """Turns a provider's streamed bytes into canonical chunk dicts, incrementally."""

    def feed(self, data: bytes) -> list[Chunk]:
        """Consume the next bytes (any split); return the complete chunks they finish."""
        ...

    def finish(self) -> list[Chunk]:
        """End of stream: flush what remains; raise ProviderError if the stream ended mid-way
        (no terminal event: no ``[DONE]`` / ``message_stop`` / ``done: true``)."""
        ...


class NativeAdapter(Protocol):
    """What an adapter implements, besides ``ChatAdapter``, to pass a client's body on in its own
    format (``turnout.translate.passthrough``); the gateway looks it up with ``getattr``.

    The answer to a native request is in the provider's wire format, so ``chat_response`` and
    ``stream_decoder`` decode it for the record as they decode a translated request's answer."""

    def native_request(self, target: Target, native: NativeBody, *, stream: bool) -> UpstreamRequest | None:
        """The request that sends ``native`` as is (``model`` = ``target.external_id``), marked
        ``native``; None when this provider does not speak ``native.format``."""
        ...


class ChatAdapter(Protocol):
    """One provider wire format: transport (URLs, auth, signing) and the translation it uses."""

    #: signs every request the adapter builds (and the spec's models requests); None: no signing
    sign: Signer | None

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        """The headers that authenticate a request (and name the API version, where one is sent)."""
        ...

    def chat_request(self, target: Target, body: ChatRequest, *, stream: bool) -> UpstreamRequest:
        """Build the provider request from a canonical body (``model`` becomes ``target.external_id``).
        With ``stream``, ask the provider for usage in the stream when it supports that."""
        ...

    def chat_response(self, target: Target, payload: bytes) -> Completion:
        """Provider success body -> canonical ``chat.completion`` (``model`` = ``target.model_id``)."""
        ...

    def stream_decoder(self, target: Target) -> StreamDecoder:
        """A fresh decoder for one streamed response."""
        ...

    def embeddings_request(self, target: Target, body: EmbeddingsRequest) -> UpstreamRequest:
        """Canonical OpenAI ``/v1/embeddings`` body -> provider request."""
        ...

    def embeddings_response(self, target: Target, payload: bytes) -> EmbeddingsResponse:
        """Provider body -> canonical OpenAI embeddings response (``object: list``, ``data``, ``usage``)."""
        ...

    def error(self, target: Target, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """Provider error answer -> ProviderError with the right status, type and retry hints."""
        ...
