"""Provider type -> adapter. Adapters are stateless, so each type gets one shared instance."""

from __future__ import annotations

import importlib

from turnout.errors import UpstreamError
from turnout.providers.azure import AzureAdapter
from turnout.providers.base import ChatAdapter
from turnout.providers.ollama import OllamaAdapter
from turnout.providers.openai_compat import OpenAICompatAdapter

_openai = OpenAICompatAdapter()
_ADAPTERS: dict[str, ChatAdapter] = {
    "openai": _openai,
    "openrouter": _openai,
    "custom": _openai,
    "azure": AzureAdapter(),
    "ollama": OllamaAdapter(),
}
# Built on first use, so this module imports even where those adapters are absent.
_LAZY = {"anthropic": ("turnout.providers.anthropic", "AnthropicAdapter")}


def adapter_for(provider_type: str) -> ChatAdapter:
    """The adapter for ``provider_type``; UpstreamError (502) for an unknown type."""
    adapter = _ADAPTERS.get(provider_type)
    if adapter is not None:
        return adapter
    lazy = _LAZY.get(provider_type)
    if lazy is None:
        raise UpstreamError(f"no adapter for provider type '{provider_type}'")
    module = importlib.import_module(lazy[0])
    adapter = getattr(module, lazy[1])()
    _ADAPTERS[provider_type] = adapter
    return adapter
