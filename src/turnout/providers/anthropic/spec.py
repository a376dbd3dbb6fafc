"""``anthropic``: the Anthropic Messages API. Models are listed at ``/v1/models`` in pages of up to
1000 (``limit``), the next asked for with ``after_id``; prices come from genai-prices."""

from __future__ import annotations

from turnout.providers.anthropic import models
from turnout.providers.anthropic.adapter import ANTHROPIC_VERSION, AnthropicAdapter, api_root
from turnout.providers.spec import Pagination, ProviderSpec, WireFormat

PAGE_LIMIT = 1000


def models_url(api_base: str) -> str:
    """``{api_base}/v1/models`` (without doubling a ``/v1``)."""
    return f"{api_root(api_base)}/v1/models"


SPEC = ProviderSpec(
    type="anthropic",
    display_name="Anthropic",
    adapter=AnthropicAdapter(),
    models=WireFormat(
        "anthropic", models.parse_page, Pagination(first={"limit": str(PAGE_LIMIT)}, cursor="after_id")
    ),
    models_url=models_url,
    api_version=ANTHROPIC_VERSION,
    price_id="anthropic",
)
