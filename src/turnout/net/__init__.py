"""Networking helpers: the shared HTTP client and SSRF guards."""
