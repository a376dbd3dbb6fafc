"""Transport of the OpenAI Chat Completions wire format: ``{api_base}/chat/completions`` and
``/embeddings`` with ``Authorization: Bearer``. The translation is a pass-through
(:mod:`turnout.translate.openai`); this is the hot path, so a request costs a shallow copy of the
body and stream chunks pass on as decoded.

One stateless instance serves every OpenAI-compatible type (``openai``, ``openrouter``, ``custom``);
``app_headers`` adds per-type headers (OpenRouter's app attribution). Azure subclasses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from turnout.providers.base import ProviderError, Signer, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.spec import bearer
from turnout.translate import openai
from turnout.translate.completions_native import COMPLETIONS
from turnout.translate.completions_native import DECODING as COMPLETIONS_DECODING
from turnout.translate.errors import error_from_response
from turnout.translate.openai import OpenAIStreamDecoder
from turnout.translate.passthrough import NativeBody, body_with_model
from turnout.translate.responses_native import DECODING as RESPONSES_DECODING
from turnout.translate.responses_native import RESPONSES
from turnout.translate.types import ChatRequest, Completion, EmbeddingsRequest, EmbeddingsResponse

#: provider types whose servers speak the Responses API (requests in it are passed through)
RESPONSES_TYPES = frozenset({"openai", "openrouter"})


class OpenAICompatAdapter:
    """Adapter for OpenAI-compatible providers (stateless)."""

    sign: Signer | None

    def __init__(
        self, *, app_headers: Mapping[str, Mapping[str, str]] | None = None, sign: Signer | None = None
    ) -> None:
        self._app_headers = {kind: dict(headers) for kind, headers in (app_headers or {}).items()}
        self.sign = sign

    # -- hooks for subclasses (Azure) -------------------------------------------------------------

    def url(self, target: Target, operation: str) -> str:
        """Endpoint for ``operation`` (``chat/completions`` or ``embeddings``)."""
        return f"{target.api_base.rstrip('/')}/{operation}"

    #: ``Authorization: Bearer`` when the credential has a key (a staticmethod: no bound method per call)
    auth_headers: Callable[[Credentials], dict[str, str]] = staticmethod(bearer)

    def upstream_model(self, target: Target) -> str | None:
        """The body's ``model`` value (None: leave it out)."""
        return target.external_id

    # -- ChatAdapter ------------------------------------------------------------------------------

    def headers(self, target: Target) -> dict[str, str]:
        """Auth headers, JSON, and the provider type's app headers."""
        headers = self.auth_headers(target.credentials)
        headers["Content-Type"] = "application/json"
        extra = self._app_headers.get(target.provider_type)
        if extra:
            headers.update(extra)
        return headers

    def _post(self, target: Target, operation: str, body: bytes) -> UpstreamRequest:
        request = UpstreamRequest("POST", self.url(target, operation), self.headers(target), body)
        if self.sign is not None:
            self.sign(request, target.credentials)
        return request

    def chat_request(self, target: Target, body: ChatRequest, *, stream: bool) -> UpstreamRequest:
        """Canonical body -> provider request; with ``stream``, ask for usage in the last chunk."""
        out = openai.chat_body(body, self.upstream_model(target), stream=stream)
        return self._post(target, "chat/completions", orjson.dumps(out))

    def native_request(self, target: Target, native: NativeBody, *, stream: bool) -> UpstreamRequest | None:
        """A client's body in a format this provider also speaks, ``model`` = the provider's id: the
        Responses API (``RESPONSES_TYPES``; Azure: its v1 API) and legacy completions (self-hosted
        ``custom`` servers, which serve them for every model); None otherwise (translated)."""
        name = native.format.name
        if name == RESPONSES.name and self.speaks_responses(target):
            body = orjson.dumps({**native.body, "model": target.external_id, "stream": stream})
            request = self._post(target, "responses", body)
            request.decoding = RESPONSES_DECODING
        elif name == COMPLETIONS.name and target.provider_type == "custom":
            request = self._post(target, "completions", body_with_model(native, target.external_id))
            request.decoding = COMPLETIONS_DECODING
        else:
            return None
        request.native = True
        return request

    def speaks_responses(self, target: Target) -> bool:
        """Whether the provider serves ``/responses`` (OpenAI and OpenRouter do; custom servers vary)."""
        return target.provider_type in RESPONSES_TYPES

    def chat_response(self, target: Target, payload: bytes) -> Completion:
        """Provider ``chat.completion`` -> canonical (``model`` = catalog id)."""
        return openai.completion(payload, target.model_id, target.credentials.secrets)

    def stream_decoder(self, target: Target) -> OpenAIStreamDecoder:
        """A fresh SSE decoder for one streamed response."""
        return OpenAIStreamDecoder(target.model_id, target.credentials.secrets)

    def embeddings_request(self, target: Target, body: EmbeddingsRequest) -> UpstreamRequest:
        """Canonical embeddings body -> provider request."""
        out = openai.embeddings_body(body, self.upstream_model(target))
        return self._post(target, "embeddings", orjson.dumps(out))

    def embeddings_response(self, target: Target, payload: bytes) -> EmbeddingsResponse:
        """Provider embeddings answer -> canonical (``model`` = catalog id)."""
        return openai.embeddings(payload, target.model_id, target.credentials.secrets)

    def error(self, target: Target, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """HTTP error answer -> ProviderError (message kept and scrubbed, type by status, retry hints)."""
        return error_from_response(status, payload, headers, secrets=target.credentials.secrets)
