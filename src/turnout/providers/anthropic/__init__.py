"""Anthropic Messages API (``provider_type: anthropic``)."""
