"""Providers and their models: registration, catalog sync, pricing, capabilities, model service."""
