"""Azure OpenAI: the OpenAI wire format behind Azure's URLs and ``api-key`` header.

Two URL styles, chosen per provider:

- deployments (default): ``{resource}/openai/deployments/{deployment}/chat/completions?api-version=V``
  with ``V = target.api_version`` or ``2024-10-21`` (the GA version that supports
  ``stream_options.include_usage``). The deployment (``target.external_id``) picks the model, so the
  body's ``model`` field is left out, as in Azure's reference.
- v1 (``api_base`` ending in ``/openai/v1``, or ``api_version`` ``v1``/``latest``/``preview``):
  ``{resource}/openai/v1/chat/completions`` with ``model`` = the deployment name in the body, and
  ``?api-version=preview`` only when asked for.

``api_base`` may be given with or without a trailing ``/openai``. A key that is a Microsoft Entra
token (a JWT) is sent as ``Authorization: Bearer``; any other key as ``api-key``. Streamed chunks
with no choices and no usage (Azure's ``prompt_filter_results`` chunk) are dropped.
"""

from __future__ import annotations

from urllib.parse import quote

from turnout.providers.base import Target
from turnout.providers.credentials import Credentials
from turnout.providers.openai_compat.adapter import OpenAICompatAdapter
from turnout.providers.spec import strip_suffixes
from turnout.translate.openai import OpenAIStreamDecoder

DEFAULT_API_VERSION = "2024-10-21"
_V1_VERSIONS = frozenset({"v1", "latest", "preview"})


def is_v1(target: Target) -> bool:
    """Whether this provider uses Azure's ``/openai/v1/`` URL style."""
    return target.api_base.rstrip("/").endswith("/openai/v1") or (target.api_version or "") in _V1_VERSIONS


def resource(api_base: str) -> str:
    """The resource root: ``api_base`` without a trailing ``/openai/v1`` or ``/openai``."""
    return strip_suffixes(api_base, "/openai/v1", "/openai")


class AzureAdapter(OpenAICompatAdapter):
    """Adapter for ``azure`` providers (stateless)."""

    def url(self, target: Target, operation: str) -> str:
        """Deployment-style or v1-style endpoint for ``operation``."""
        root = resource(target.api_base)
        if is_v1(target):
            url = f"{root}/openai/v1/{operation}"
            return f"{url}?api-version=preview" if target.api_version == "preview" else url
        deployment = quote(target.external_id, safe="")
        version = quote(target.api_version or DEFAULT_API_VERSION, safe="")
        return f"{root}/openai/deployments/{deployment}/{operation}?api-version={version}"

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        """``api-key`` (or ``Authorization: Bearer`` for an Entra ID token)."""
        key = credentials.api_key
        if not key:
            return {}
        if key.startswith("eyJ") and key.count(".") == 2:
            return {"Authorization": f"Bearer {key}"}
        return {"api-key": key}

    def upstream_model(self, target: Target) -> str | None:
        """v1 style names the deployment in the body; deployment URLs need no ``model``."""
        return target.external_id if is_v1(target) else None

    def speaks_responses(self, target: Target) -> bool:
        """Azure serves the Responses API on its v1 URLs (deployment URLs have no ``responses``)."""
        return is_v1(target)

    def stream_decoder(self, target: Target) -> OpenAIStreamDecoder:
        """SSE decoder that also drops Azure's content-filter-only chunks."""
        return OpenAIStreamDecoder(target.model_id, target.credentials.secrets, drop_empty=True)
