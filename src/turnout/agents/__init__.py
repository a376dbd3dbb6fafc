"""Agents of a tenant and their API keys."""
