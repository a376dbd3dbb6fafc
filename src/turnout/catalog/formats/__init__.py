"""Provider wire formats: one module per models-endpoint format, each with pure parsers.

``WIRE_FORMATS`` maps a provider type to how its models are listed: the default path (relative to
``api_base``, see :func:`turnout.catalog.fetch.models_url`), whether the list is cursor-paginated,
and ``parse_page(payload, provider_type) -> (models, next_cursor)``. Azure and custom providers
speak the OpenAI format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from turnout.catalog.discovered import DiscoveredModel
from turnout.catalog.formats import anthropic, ollama, openai, openrouter

ParsePage = Callable[[Any, str], tuple[list[DiscoveredModel], str | None]]


@dataclass(frozen=True, slots=True)
class WireFormat:
    """How one provider type lists its models."""

    name: str
    default_path: str
    parse_page: ParsePage
    paginated: bool = False


_OPENAI = WireFormat("openai", "/models", openai.parse_page)

WIRE_FORMATS: dict[str, WireFormat] = {
    "openai": _OPENAI,
    "custom": _OPENAI,
    "azure": WireFormat("openai", "/openai/models", openai.parse_page),
    "openrouter": WireFormat("openrouter", "/models", openrouter.parse_page),
    "anthropic": WireFormat("anthropic", "/v1/models", anthropic.parse_page, paginated=True),
    "ollama": WireFormat("ollama", "/api/tags", ollama.parse_page),
}


def wire_format(provider_type: str) -> WireFormat:
    """The format of a provider type; ``KeyError`` for an unknown one."""
    return WIRE_FORMATS[provider_type]


__all__ = [
    "WIRE_FORMATS",
    "ParsePage",
    "WireFormat",
    "anthropic",
    "ollama",
    "openai",
    "openrouter",
    "wire_format",
]
