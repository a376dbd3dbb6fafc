"""Guards against server-side request forgery through admin-supplied URLs.

Private and loopback addresses stay allowed (Ollama, vLLM and llama.cpp usually live there);
link-local and cloud-metadata addresses are refused unless settings allow them.

A host is canonicalised before it is checked, because every resolver or URL library on the way
may read it differently: NFKC and IDNA (fullwidth digits and ideographic dots become ASCII, as
yarl makes them before connecting), trailing dots dropped, and the legacy ``inet_aton`` forms of
IPv4 (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.43518``) read as the
address they name. IPv6 addresses are checked together with the IPv4 address they embed
(IPv4-mapped and -compatible, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4, Teredo).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from turnout.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTNAMES = frozenset(
    {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}
)
_BLOCKED_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local: AWS, GCP, Azure IMDS, OpenStack ...
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS IMDS over IPv6
    ipaddress.ip_network("fd20:ce::254/128"),  # GCP metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("168.63.129.16/32"),  # Azure WireServer
    ipaddress.ip_network("192.0.0.192/32"),  # Oracle Cloud metadata
)
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})  # what IDNA reads as dots


def canonical_host(host: str) -> str:
    """The lower-case ASCII form a URL library would connect to: NFKC and IDNA applied, the
    ideographic dots read as dots, brackets and trailing dots removed. Hosts IDNA refuses are
    returned as normalised so far (they never resolve)."""
    host = unicodedata.normalize("NFKC", host).translate(_DOTS).strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            pass
    return host


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The address of a legacy IPv4 form (1 to 4 parts; decimal, octal with a leading 0, or hex),
    as the C library's ``inet_aton`` reads it; ``None`` when ``host`` is not one."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        if not part.isascii() or not part:
            return None
        try:
            if part[:2] in ("0x", "0X"):
                values.append(int(part[2:], 16))
            elif len(part) > 1 and part[0] == "0":
                values.append(int(part[1:], 8))
            else:
                values.append(int(part, 10))
        except ValueError:
            return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (5 - len(values))) or any(v < 0 for v in values):
        return None
    number = last
    for i, value in enumerate(head):
        number |= value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def parse_ip(host: str) -> IPAddress | None:
    """The IP address a host names (any form above), or ``None`` for a host name."""
    host = canonical_host(host).split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _inet_aton(host) if host[:1].isdigit() else None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries, by every transition scheme that routes to them."""
    found: list[ipaddress.IPv4Address] = []
    value = int(ip)
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _COMPATIBLE or ip in _NAT64:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in _NAT64_LOCAL:  # RFC 6052: prefix lengths 48, 56, 64 put the u octet (bits 64-71) inside
        for prefix in (48, 56, 64):
            field = (value >> (88 - prefix)) & (1 << 40) - 1  # the 40 bits after the prefix
            before_u = 64 - prefix  # IPv4 bits ahead of the u octet
            upper, lower = field >> (40 - before_u), field & (1 << (32 - before_u)) - 1
            found.append(ipaddress.IPv4Address(upper << (32 - before_u) | lower))
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))  # prefix length 96
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def is_blocked_address(address: str) -> bool:
    """True for link-local and cloud-metadata IPs in any spelling, or embedding one (see above)."""
    ip = parse_ip(address)
    if ip is None:
        return False
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates.extend(embedded_ipv4(ip))
    return any(candidate in net for candidate in candidates for net in _BLOCKED_NETWORKS)


def is_blocked_host(host: str) -> bool:
    """A metadata host name or a blocked address, after canonicalisation (no DNS lookup)."""
    return canonical_host(host) in METADATA_HOSTNAMES or is_blocked_address(host)


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
        if is_blocked_host(host):
            raise InvalidRequest(
                f"{param} points to a link-local or cloud-metadata address; "
                "set TURNOUT_ALLOW_PRIVATE_API_BASE=true to allow it",
                param=param,
                code="ssrf_blocked",
            )
        for address in _resolve_quietly(canonical_host(host)):
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


def _refuse(host: str) -> OSError:
    """EACCES with the reason as ``strerror`` (what aiohttp's connection errors show)."""
    return OSError(errno.EACCES, f"refusing to connect to {host}: link-local or cloud-metadata address")


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses blocked addresses at connect time (defeats DNS rebinding)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        if is_blocked_host(host):  # a metadata name, or an address spelt so aiohttp took it for a name
            raise _refuse(host)
        results = await self._inner.resolve(host, port, family)
        safe = [r for r in results if not is_blocked_address(r["host"])]
        if not safe:
            raise _refuse(host)
        return safe

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp ``socket_factory``: the last check, on the very address about to be connected.
    aiohttp skips the resolver for IP literals, so this is what guards ``http://[64:ff9b::...]/``
    and the fullwidth-digit spellings yarl turns into literals."""
    family, type_, proto, _, sockaddr = addr_info
    if is_blocked_address(str(sockaddr[0])):
        raise _refuse(str(sockaddr[0]))
    return socket.socket(family=family, type=type_, proto=proto)
