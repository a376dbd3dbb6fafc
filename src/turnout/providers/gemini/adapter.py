"""Transport of the Gemini API: ``POST {api_base}/v1beta/models/{model}:generateContent``, and
``:streamGenerateContent?alt=sse`` for streams, ``:batchEmbedContents`` for embeddings. The key
goes in the ``x-goog-api-key`` header, never in the URL (Gemini also takes ``?key=``, but URLs end
up in proxy and access logs). The translation lives in :mod:`turnout.translate.gemini_outbound`
(requests), :mod:`turnout.translate.gemini` (answers, embeddings, errors) and
:mod:`turnout.translate.gemini_stream`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from turnout.providers.base import ProviderError, Signer, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.spec import strip_suffixes
from turnout.translate import gemini
from turnout.translate.errors import parse_retry_after
from turnout.translate.gemini_outbound import to_gemini_request
from turnout.translate.gemini_stream import GeminiStreamDecoder
from turnout.translate.types import ChatRequest, Completion, EmbeddingsRequest, EmbeddingsResponse

API_VERSION = "v1beta"
DEFAULT_API_BASE = "https://generativelanguage.googleapis.com"


def api_root(api_base: str) -> str:
    """``api_base`` without a trailing ``/`` or ``/v1beta`` (nor the ``/v1beta/openai`` of Gemini's
    OpenAI-compatible endpoint), so an admin may give either."""
    return strip_suffixes(api_base or DEFAULT_API_BASE, "/v1beta/openai", f"/{API_VERSION}")


def model_name(external_id: str) -> str:
    """The resource name of a model: ``models/<id>`` (``tunedModels/...`` kept as is)."""
    if external_id.startswith(("models/", "tunedModels/")):
        return external_id
    return f"models/{external_id}"


def method_url(api_base: str, external_id: str, method: str) -> str:
    """``{root}/v1beta/models/{model}:{method}``, the model's name escaped for a path."""
    return f"{api_root(api_base)}/{API_VERSION}/{quote(model_name(external_id), safe='/')}:{method}"


class GeminiAdapter:
    """Adapter for ``gemini`` providers (stateless)."""

    def __init__(self, *, sign: Signer | None = None) -> None:
        self.sign = sign

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        """``x-goog-api-key`` when the credential has a key."""
        return {"x-goog-api-key": credentials.api_key} if credentials.api_key else {}

    def _request(
        self, target: Target, url: str, body: dict[str, Any], *, stream: bool = False
    ) -> UpstreamRequest:
        headers = {"Content-Type": "application/json", **self.auth_headers(target.credentials)}
        if stream:
            headers["Accept"] = "text/event-stream"
        request = UpstreamRequest("POST", url, headers, orjson.dumps(body))
        if self.sign is not None:
            self.sign(request, target.credentials)
        return request

    def chat_request(self, target: Target, body: ChatRequest, *, stream: bool) -> UpstreamRequest:
        """Canonical body -> ``generateContent`` (or ``streamGenerateContent?alt=sse``; Gemini's
        streams always carry usage). Gemma models take no system instruction: it joins the prompt."""
        external = target.external_id
        out = to_gemini_request(body, system_instruction=not external.startswith("gemma-"))
        if stream:
            url = method_url(target.api_base, external, "streamGenerateContent") + "?alt=sse"
        else:
            url = method_url(target.api_base, external, "generateContent")
        return self._request(target, url, out, stream=stream)

    def chat_response(self, target: Target, payload: bytes) -> Completion:
        """``GenerateContentResponse`` -> ``chat.completion`` (``model`` = catalog id)."""
        return gemini.completion(payload, target.model_id, target.credentials.secrets)

    def stream_decoder(self, target: Target) -> GeminiStreamDecoder:
        """A fresh decoder for one Gemini SSE stream."""
        return GeminiStreamDecoder(target.model_id, secrets=target.credentials.secrets)

    def embeddings_request(self, target: Target, body: EmbeddingsRequest) -> UpstreamRequest:
        """Canonical embeddings body -> ``batchEmbedContents`` (one request per input)."""
        out = gemini.embed_request(body, model_name(target.external_id))
        return self._request(
            target, method_url(target.api_base, target.external_id, "batchEmbedContents"), out
        )

    def embeddings_response(self, target: Target, payload: bytes) -> EmbeddingsResponse:
        """``{"embeddings": [{"values"}]}`` -> OpenAI embeddings list."""
        return gemini.embeddings(payload, target.model_id, target.credentials.secrets)

    def error(self, target: Target, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """Gemini's ``{"error": {"code", "message", "status", "details"}}`` -> ProviderError: its
        message (credential scrubbed), a rejected key as 401, the wait from ``Retry-After`` or
        ``RetryInfo``."""
        return gemini.gemini_error(
            status,
            gemini.error_object(payload),
            secrets=target.credentials.secrets,
            retry_after_s=parse_retry_after(headers),
        )
