"""Outbound provider adapters, one module per wire format, registered by provider type."""
