"""Transport of Ollama's native API: ``POST {server}/api/chat`` (NDJSON stream) and
``POST {server}/api/embed``, with ``Authorization: Bearer`` when a key is set (Ollama's cloud, or
a proxy in front of a local one). The translation lives in :mod:`turnout.translate.ollama`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from turnout.providers.base import ProviderError, Signer, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.spec import bearer, strip_suffixes
from turnout.translate import ollama
from turnout.translate.errors import error_from_response
from turnout.translate.ollama import OllamaStreamDecoder
from turnout.translate.types import ChatRequest, Completion, EmbeddingsRequest, EmbeddingsResponse


def ollama_base(api_base: str) -> str:
    """The server root: ``api_base`` without a trailing ``/``, ``/v1`` or ``/api``."""
    return strip_suffixes(api_base, "/v1", "/api")


class OllamaAdapter:
    """Adapter for ``ollama`` providers (stateless)."""

    def __init__(self, *, sign: Signer | None = None) -> None:
        self.sign = sign

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        """``Authorization: Bearer`` when the credential has a key."""
        return bearer(credentials)

    def _request(self, target: Target, path: str, body: dict[str, Any]) -> UpstreamRequest:
        headers = self.auth_headers(target.credentials)
        headers["Content-Type"] = "application/json"
        url = f"{ollama_base(target.api_base)}{path}"
        request = UpstreamRequest("POST", url, headers, orjson.dumps(body))
        if self.sign is not None:
            self.sign(request, target.credentials)
        return request

    def chat_request(self, target: Target, body: ChatRequest, *, stream: bool) -> UpstreamRequest:
        """Canonical body -> ``POST {base}/api/chat``."""
        out = ollama.to_ollama_chat(body, target.external_id, stream=stream)
        return self._request(target, "/api/chat", out)

    def chat_response(self, target: Target, payload: bytes) -> Completion:
        """Ollama chat answer -> ``chat.completion``."""
        return ollama.completion(payload, target.model_id, target.credentials.secrets)

    def stream_decoder(self, target: Target) -> OllamaStreamDecoder:
        """A fresh NDJSON decoder for one streamed response."""
        return OllamaStreamDecoder(target.model_id, target.credentials.secrets)

    def embeddings_request(self, target: Target, body: EmbeddingsRequest) -> UpstreamRequest:
        """Canonical embeddings body -> ``POST {base}/api/embed``."""
        return self._request(target, "/api/embed", ollama.embed_body(body, target.external_id))

    def embeddings_response(self, target: Target, payload: bytes) -> EmbeddingsResponse:
        """Ollama ``{"embeddings": [[...]]}`` -> OpenAI embeddings list."""
        return ollama.embeddings(payload, target.model_id, target.credentials.secrets)

    def error(self, target: Target, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """Ollama ``{"error": "..."}`` (or plain text) -> ProviderError."""
        return error_from_response(
            status, payload, headers, secrets=target.credentials.secrets, provider="ollama"
        )
