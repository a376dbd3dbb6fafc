"""``azure``: Azure OpenAI. Models are listed at ``{resource}/openai/models?api-version=V`` in the
OpenAI format (with Azure's ``capabilities`` object), priced from genai-prices' Azure list."""

from __future__ import annotations

from turnout.providers.azure.adapter import DEFAULT_API_VERSION, AzureAdapter, resource
from turnout.providers.openai_compat.spec import OPENAI_MODELS
from turnout.providers.spec import ProviderSpec


def models_url(api_base: str) -> str:
    """``{resource}/openai/models``."""
    return f"{resource(api_base)}/openai/models"


def list_params(url: str, api_version: str | None) -> dict[str, str]:
    """``api-version`` (the provider's, else the default) unless the URL already has one."""
    return {} if "api-version=" in url else {"api-version": api_version or DEFAULT_API_VERSION}


SPEC = ProviderSpec(
    type="azure",
    display_name="Azure OpenAI",
    adapter=AzureAdapter(),
    models=OPENAI_MODELS,
    models_url=models_url,
    list_params=list_params,
    api_version=DEFAULT_API_VERSION,
    price_id="azure",
)
