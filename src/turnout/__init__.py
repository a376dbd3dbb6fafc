"""Turnout: an LLM gateway and intelligent model router."""

__version__ = "0.1.0"
