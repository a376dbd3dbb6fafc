"""Prices a provider imposes on all its models: the admin's defaults, or zero when self-hosted.

genai-prices knows what hosted APIs charge. A model served by the operator's own Ollama, vLLM or
llama.cpp costs nothing per token, yet genai-prices may still match its name (``llama-3.1-8b``) to
some cloud's price, or know nothing and leave it ``standard``. So at sync a self-hosted provider's
models are priced 0 (hence ``free``), unless the admin set default prices for the provider, which
then apply to every model it lists. Prices an admin set by hand on a model still win (sync leaves
``Model.overrides`` alone).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from decimal import Decimal
from urllib.parse import urlsplit

from turnout.modelinfo.discovered import DiscoveredModel
from turnout.net.ssrf import canonical_host, embedded_ipv4, parse_ip
from turnout.providers.registry import SPECS_BY_TYPE
from turnout.store.models import Provider

ZERO = Decimal(0)
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)


def is_local_host(host: str) -> bool:
    """A loopback or private address literal (any spelling the SSRF guard reads), ``localhost``,
    or a single-label name such as a Docker service (``vllm``, ``ollama``). No DNS lookup: this
    runs at every sync and must not depend on what a resolver says today."""
    name = canonical_host(host)
    ip = parse_ip(name)
    if ip is None:
        return name == "localhost" or name.endswith(".localhost") or ("." not in name and bool(name))
    candidates = [ip, *embedded_ipv4(ip)] if isinstance(ip, ipaddress.IPv6Address) else [ip]
    return any(address in net for address in candidates for net in LOCAL_NETWORKS)


def detected_self_hosted(provider_type: str, api_base: str) -> bool:
    """As the type's spec says (``ProviderSpec.self_hosting``): always (Ollama), when its host is
    local (OpenAI-compatible servers, see :func:`is_local_host`), or never (hosted APIs such as
    Anthropic, Azure and OpenRouter: at a private address they are a relay to the paid service)."""
    spec = SPECS_BY_TYPE.get(provider_type)
    mode = spec.self_hosting if spec is not None else "never"
    if mode == "always":
        return True
    return mode == "when_local" and is_local_host(urlsplit(api_base).hostname or "")


def is_self_hosted(provider: Provider) -> bool:
    """The admin's ``self_hosted`` setting when given, else what the type and address suggest."""
    if provider.self_hosted is not None:
        return provider.self_hosted
    return detected_self_hosted(provider.provider_type, provider.api_base)


def provider_prices(provider: Provider) -> tuple[Decimal | None, Decimal | None]:
    """``(input, output)`` USD per 1M tokens every synced model of ``provider`` gets; ``None`` where
    the model keeps the price the provider reported or genai-prices knows."""
    fallback = ZERO if is_self_hosted(provider) else None
    price_in, price_out = provider.default_price_input, provider.default_price_output
    return (
        fallback if price_in is None else price_in,
        fallback if price_out is None else price_out,
    )


def with_provider_prices(
    found: list[DiscoveredModel], prices: tuple[Decimal | None, Decimal | None]
) -> list[DiscoveredModel]:
    """``found`` repriced with :func:`provider_prices` (and its tiers rederived); unchanged when
    the provider imposes no price."""
    price_in, price_out = prices
    if price_in is None and price_out is None:
        return found
    repriced: list[DiscoveredModel] = []
    for item in found:
        new_in = item.pricing_input if price_in is None else price_in
        new_out = item.pricing_output if price_out is None else price_out
        repriced.append(
            dataclasses.replace(
                item,
                pricing_input=new_in,
                pricing_output=new_out,
                # an imposed input price is the cached tokens' price too (a cloud's cache price is not)
                pricing_cache_read=item.pricing_cache_read if price_in is None else None,
                pricing_cache_write=item.pricing_cache_write if price_in is None else None,
            )
        )
    return repriced
