"""Ollama ``GET /api/tags``.

``{"models": [{"name", "model", "modified_at", "size", "digest", "details": {"format", "family",
"families", "parameter_size", "quantization_level"}}]}``. Local models cost nothing, so their
prices are 0 ("free"); cloud-offloaded ones (``remote_host`` / ``-cloud`` tags) are left unknown
here. At sync an Ollama provider counts as self-hosted (``catalog/self_hosted.py``), so those are
priced 0 too (Ollama's cloud bills a subscription, not tokens) unless its admin says otherwise.
The context window is not listed here (only ``/api/show`` has it), so it stays ``None``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from turnout.modelinfo.capabilities import (
    infer_capabilities,
    is_embedding,
    is_embedding_family,
    name_suggests_tools,
    name_suggests_vision,
)
from turnout.modelinfo.discovered import DiscoveredModel, UnexpectedPayload

_ZERO = Decimal(0)
_VISION_FAMILIES = frozenset({"clip", "mllama", "qwen25vl", "llama4"})


def _families(details: dict[str, Any]) -> set[str]:
    found = {f.lower() for f in details.get("families") or () if isinstance(f, str)}
    family = details.get("family")
    if isinstance(family, str):
        found.add(family.lower())
    return found


def _is_remote(entry: dict[str, Any], name: str) -> bool:
    return bool(entry.get("remote_host")) or name.endswith(("-cloud", ":cloud"))


def parse_entry(entry: Any, price_id: str | None = None) -> DiscoveredModel | None:
    """One local model, or ``None`` when it has no name."""
    if not isinstance(entry, dict):
        return None
    name = entry.get("name") or entry.get("model")
    if not isinstance(name, str) or not name:
        return None
    details = entry.get("details")
    details = details if isinstance(details, dict) else {}
    families = _families(details)
    embedding = is_embedding(name) or any(is_embedding_family(f) for f in families)
    model_type = "embedding" if embedding else "chat"
    price = None if _is_remote(entry, name) else _ZERO
    capabilities = infer_capabilities(
        name,
        model_type=model_type,
        vision=not embedding and (bool(families & _VISION_FAMILIES) or name_suggests_vision(name)),
        function_calling=name_suggests_tools(name),
    )
    return DiscoveredModel(
        external_id=name,
        display_name=name.removesuffix(":latest"),
        model_type=model_type,
        capabilities=capabilities,
        ctx_length=None,
        pricing_input=price,
        pricing_output=price,
        metadata=entry,
    )


def parse_page(payload: Any, price_id: str | None = None) -> tuple[list[DiscoveredModel], str | None]:
    """All local models; no pagination."""
    data = payload.get("models") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise UnexpectedPayload("expected an object with a 'models' list")
    found = [parse_entry(entry, price_id) for entry in data]
    return [m for m in found if m is not None], None


def parse(payload: Any, price_id: str | None = None) -> list[DiscoveredModel]:
    """Models of an Ollama tags answer."""
    return parse_page(payload, price_id)[0]
