"""The three OpenAI-compatible provider types: one shared adapter, three thin specs.

``api_base`` includes the API version (``https://api.openai.com/v1``, ``https://openrouter.ai/api/v1``,
``http://vllm:8000/v1``); chat goes to ``{api_base}/chat/completions`` and the models list is
``{api_base}/models``. OpenRouter lists prices and capabilities in its own format and gets
Turnout's app attribution header.
"""

from __future__ import annotations

from turnout.providers.openai_compat import models, openrouter_models
from turnout.providers.openai_compat.adapter import OpenAICompatAdapter
from turnout.providers.spec import ProviderSpec, WireFormat

#: OpenRouter's app attribution (https://openrouter.ai/docs/app-attribution); add ``HTTP-Referer``
#: with a URL to be listed by site.
OPENROUTER_HEADERS = {"X-Title": "Turnout"}

ADAPTER = OpenAICompatAdapter(app_headers={"openrouter": OPENROUTER_HEADERS})
OPENAI_MODELS = WireFormat("openai", models.parse_page)


def models_url(api_base: str) -> str:
    """``{api_base}/models``."""
    return f"{api_base.rstrip('/')}/models"


OPENAI = ProviderSpec(
    type="openai",
    display_name="OpenAI",
    adapter=ADAPTER,
    models=OPENAI_MODELS,
    models_url=models_url,
    price_id="openai",
    self_hosting="when_local",  # "openai" is also how people register a local OpenAI-compatible server
)
OPENROUTER = ProviderSpec(
    type="openrouter",
    display_name="OpenRouter",
    adapter=ADAPTER,
    models=WireFormat("openrouter", openrouter_models.parse_page),
    models_url=models_url,
    price_id="openrouter",
)
CUSTOM = ProviderSpec(
    type="custom",
    display_name="OpenAI-compatible server (vLLM, llama.cpp, LM Studio, ...)",
    adapter=ADAPTER,
    models=OPENAI_MODELS,
    models_url=models_url,
    price_id=None,  # any vendor's models: genai-prices guesses the vendor from the id
    self_hosting="when_local",
)
