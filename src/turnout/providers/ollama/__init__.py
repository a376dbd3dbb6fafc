"""Ollama's native API (``provider_type: ollama``)."""
