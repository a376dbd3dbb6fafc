"""``gemini``: Google's Gemini API (generativelanguage.googleapis.com, API keys from AI Studio).
Models are listed at ``/v1beta/models`` in pages (``pageSize``, then ``pageToken``); prices come
from genai-prices, whose provider for this API is ``google``."""

from __future__ import annotations

from turnout.providers.gemini import models
from turnout.providers.gemini.adapter import API_VERSION, GeminiAdapter, api_root
from turnout.providers.spec import Pagination, ProviderSpec, WireFormat

PAGE_SIZE = 1000  # Gemini's largest page


def models_url(api_base: str) -> str:
    """``{api_base}/v1beta/models`` (without doubling a ``/v1beta``)."""
    return f"{api_root(api_base)}/{API_VERSION}/models"


SPEC = ProviderSpec(
    type="gemini",
    display_name="Google Gemini",
    adapter=GeminiAdapter(),
    models=WireFormat(
        "gemini", models.parse_page, Pagination(first={"pageSize": str(PAGE_SIZE)}, cursor="pageToken")
    ),
    models_url=models_url,
    price_id="google",
)
