"""The registered provider types: one line per spec. Everything that lists or checks provider types
(the admin API's validation and schema, the CLI help, sync, pricing) reads it from here.

Adding a provider: write its folder with a ``spec.py`` (see ``providers/README.md``), add its
``SPEC`` to ``SPECS``; the contract suite (``tests/contract/test_providers.py``) then runs on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from turnout.errors import UpstreamError
from turnout.providers.anthropic.spec import SPEC as ANTHROPIC
from turnout.providers.azure.spec import SPEC as AZURE
from turnout.providers.base import ChatAdapter
from turnout.providers.bedrock.spec import SPEC as BEDROCK
from turnout.providers.gemini.spec import SPEC as GEMINI
from turnout.providers.ollama.spec import SPEC as OLLAMA
from turnout.providers.openai_compat.spec import CUSTOM, OPENAI, OPENROUTER
from turnout.providers.spec import ProviderSpec, WireFormat

SPECS: tuple[ProviderSpec, ...] = (
    OPENAI,
    OPENROUTER,
    ANTHROPIC,
    AZURE,
    OLLAMA,
    CUSTOM,
    BEDROCK,
    GEMINI,
)

PROVIDER_TYPES: tuple[str, ...] = tuple(spec.type for spec in SPECS)
SPECS_BY_TYPE: Mapping[str, ProviderSpec] = MappingProxyType({spec.type: spec for spec in SPECS})
#: provider type -> how it lists its models
WIRE_FORMATS: Mapping[str, WireFormat] = MappingProxyType({spec.type: spec.models for spec in SPECS})
_ADAPTERS: dict[str, ChatAdapter] = {spec.type: spec.adapter for spec in SPECS}


def spec_for(provider_type: str) -> ProviderSpec:
    """The spec of ``provider_type``; UpstreamError (502) for an unknown type."""
    spec = SPECS_BY_TYPE.get(provider_type)
    if spec is None:
        raise UpstreamError(f"no adapter for provider type '{provider_type}'")
    return spec


def adapter_for(provider_type: str) -> ChatAdapter:
    """The adapter of ``provider_type`` (one dict look-up: this runs per attempt); UpstreamError
    (502) for an unknown type."""
    adapter = _ADAPTERS.get(provider_type)
    if adapter is None:
        raise UpstreamError(f"no adapter for provider type '{provider_type}'")
    return adapter
