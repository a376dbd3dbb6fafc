"""``ollama``: Ollama's native API. Models are listed at ``{server}/api/tags``; local models cost
nothing, and an Ollama provider always counts as self-hosted (see ``catalog/self_hosted.py``)."""

from __future__ import annotations

from turnout.providers.ollama import models
from turnout.providers.ollama.adapter import OllamaAdapter, ollama_base
from turnout.providers.spec import ProviderSpec, WireFormat


def models_url(api_base: str) -> str:
    """``{server}/api/tags``."""
    return f"{ollama_base(api_base)}/api/tags"


SPEC = ProviderSpec(
    type="ollama",
    display_name="Ollama",
    adapter=OllamaAdapter(),
    models=WireFormat("ollama", models.parse_page),
    models_url=models_url,
    price_id=None,  # its models list says what is local (free); genai-prices is not asked
    self_hosting="always",
)
