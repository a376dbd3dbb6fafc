"""SSRF: every spelling of a metadata address is refused when a provider is saved and when the
gateway connects (issue 15, item 8)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from turnout.config import Settings
from turnout.net.http import make_client_session
from turnout.net.ssrf import GuardedResolver

IMDS = "169.254.169.254"
# (URL host as typed, the address it names)
BLOCKED_HOSTS = [
    ("[::a9fe:a9fe]", "::a9fe:a9fe"),  # IPv4-compatible
    ("[::ffff:a9fe:a9fe]", "::ffff:a9fe:a9fe"),  # IPv4-mapped
    ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe"),  # NAT64 well-known prefix
    ("[64:ff9b:1::a9fe:a9fe]", "64:ff9b:1::a9fe:a9fe"),  # NAT64 local-use prefix, /96 layout
    ("[64:ff9b:1:a9fe:a9:fe00::]", "64:ff9b:1:a9fe:a9:fe00::"),  # local-use prefix, /48 layout
    ("[2002:a9fe:a9fe::]", "2002:a9fe:a9fe::"),  # 6to4
    ("[2001:0:4136:e378:8000:63bf:5601:5601]", "2001:0:4136:e378:8000:63bf:5601:5601"),  # Teredo
    ("169.254.169.254.", IMDS),  # trailing dot
    ("\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14", IMDS),  # fullwidth digits
    ("169\u3002254\u3002169\u3002254", IMDS),  # ideographic full stops
    ("2852039166", IMDS),  # decimal integer
    ("0xa9fea9fe", IMDS),  # hex integer
    ("0251.0376.0251.0376", IMDS),  # octal parts
    ("169.254.43518", IMDS),  # three-part form
    ("168.63.129.16", "168.63.129.16"),  # Azure WireServer
    ("192.0.0.192", "192.0.0.192"),  # Oracle Cloud metadata
    ("METADATA.GOOGLE.INTERNAL.", None),  # metadata name, upper case, trailing dot
]
ALLOWED_ADDRESSES = [
    "127.0.0.1",
    "10.0.0.5",
    "::1",
    "2606:4700::1111",
    "2002:0a00:0001::",
    "64:ff9b::0a00:0001",
]


def _url(host: str) -> str:
    return f"http://{host}:8080/v1"


async def test_every_form_is_refused_at_save_time(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    base = {"display_name": "x", "provider_type": "openai"}
    created = await client.post(
        "/api/v2/admin/providers",
        json={**base, "id": "ok", "api_base": "http://127.0.0.1:9/v1"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    accepted = []
    for i, (host, _) in enumerate(BLOCKED_HOSTS):
        post = await client.post(
            "/api/v2/admin/providers", json={**base, "id": f"p{i}", "api_base": _url(host)}, headers=admin
        )
        patch = await client.patch("/api/v2/admin/providers/ok", json={"api_base": _url(host)}, headers=admin)
        for verb, resp in (("POST", post), ("PATCH", patch)):
            if resp.status_code != 400 or resp.json()["error"]["code"] != "ssrf_blocked":
                accepted.append(f"{verb} {host!r}: {resp.status_code} {resp.text[:120]}")
    assert not accepted, "\n".join(accepted)
    stored = (await client.get("/api/v2/admin/providers/ok", headers=admin)).json()
    assert stored["api_base"] == "http://127.0.0.1:9/v1"


class _Rebinding(AbstractResolver):
    """A DNS answer an attacker controls: the name resolves to ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        fam = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        return [{"hostname": host, "host": self.address, "port": port, "family": fam, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(("host", "address"), [pair for pair in BLOCKED_HOSTS if pair[1] is not None])
async def test_connect_time_resolver_refuses_every_form(host: str, address: str) -> None:
    rebinding = GuardedResolver(_Rebinding(address))
    with pytest.raises(OSError, match="refusing to connect"):
        await rebinding.resolve("innocent.example", 443)
    spelled = GuardedResolver(_Rebinding("93.184.216.34"))  # the host itself is the blocked spelling
    with pytest.raises(OSError, match="refusing to connect"):
        await spelled.resolve(host.strip("[]"), 443)


@pytest.mark.parametrize("address", ALLOWED_ADDRESSES)
async def test_connect_time_resolver_keeps_private_and_public_addresses(address: str) -> None:
    results = await GuardedResolver(_Rebinding(address)).resolve("ollama.internal", 11434)
    assert [r["host"] for r in results] == [address]


@pytest.mark.parametrize("host", [host for host, _ in BLOCKED_HOSTS])
async def test_gateway_session_never_connects_to_any_form(host: str, tmp_path: Path) -> None:
    """IP literals bypass aiohttp's resolver: the session's socket factory refuses them."""
    settings = Settings(data_dir=tmp_path, http_connect_timeout_s=3, _env_file=None)
    async with make_client_session(settings) as session:
        with pytest.raises(aiohttp.ClientError) as info:
            await session.get(_url(host))
    refused = "refusing to connect" in str(info.value) or isinstance(
        info.value, aiohttp.InvalidUrlClientError
    )
    assert refused, f"{host!r}: {type(info.value).__name__}: {info.value}"
