"""Guards against server-side request forgery through admin-supplied URLs.

Private and loopback addresses stay allowed (Ollama, vLLM and llama.cpp usually live there);
link-local and cloud-metadata addresses are refused unless settings allow them.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from turnout.errors import InvalidRequest

METADATA_HOSTNAMES = frozenset(
    {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}
)
_BLOCKED_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
)


def is_blocked_address(address: str) -> bool:
    """True for link-local and cloud-metadata IPs, including IPv4-mapped IPv6 forms."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in _BLOCKED_NETWORKS)


def check_api_base(url: str, *, allow_private: bool, param: str = "api_base") -> str:
    """Validate an outbound base URL and return it without a trailing slash.

    Raises InvalidRequest for a non-http(s) URL, a missing host, credentials in the URL, or a
    link-local / metadata address (literal or resolved) when ``allow_private`` is false.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest(f"{param} must be an http or https URL", param=param)
    host = parts.hostname
    if not host:
        raise InvalidRequest(f"{param} has no host", param=param)
    if parts.username or parts.password:
        raise InvalidRequest(f"{param} must not contain credentials", param=param)
    try:
        _ = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"{param} has an invalid port", param=param) from exc
    if not allow_private:
        if host.lower().rstrip(".") in METADATA_HOSTNAMES or is_blocked_address(host):
            raise InvalidRequest(
                f"{param} points to a link-local or cloud-metadata address; "
                "set TURNOUT_ALLOW_PRIVATE_API_BASE=true to allow it",
                param=param,
                code="ssrf_blocked",
            )
        for address in _resolve_quietly(host):
            if is_blocked_address(address):
                raise InvalidRequest(
                    f"{param} resolves to a link-local or cloud-metadata address",
                    param=param,
                    code="ssrf_blocked",
                )
    return url.rstrip("/")


def _resolve_quietly(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # unresolvable now: the connect-time resolver guards it later
    return [str(info[4][0]) for info in infos]


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses blocked addresses at connect time (defeats DNS rebinding)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        safe = [r for r in results if not is_blocked_address(r["host"])]
        if not safe:
            raise OSError(f"refusing to connect to {host}: link-local or cloud-metadata address")
        return safe

    async def close(self) -> None:
        await self._inner.close()
