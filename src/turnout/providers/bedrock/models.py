"""Bedrock ``GET /foundation-models`` (ListFoundationModels, on the control plane; one page).

``{"modelSummaries": [{"modelId", "modelName", "providerName", "inputModalities",
"outputModalities", "responseStreamingSupported", "inferenceTypesSupported",
"modelLifecycle": {"status"}}]}``. Kept: models that write text (``outputModalities`` has
``TEXT``), are ``ACTIVE`` and can be called on demand by their id; models offered only through
inference profiles or provisioned throughput are called by another id, which this list does not
give. Prices and context windows come from genai-prices (its ``aws`` provider); the answer has none.
"""

from __future__ import annotations

import re
from typing import Any

from turnout.modelinfo.capabilities import infer_capabilities, name_suggests_tools
from turnout.modelinfo.discovered import DiscoveredModel, UnexpectedPayload
from turnout.modelinfo.pricing import fill_missing

# Families whose Bedrock models take tools through Converse (the list reports no such flag).
_TOOLS = re.compile(
    r"^(?:anthropic\.claude-(?:3|sonnet|opus|haiku)|amazon\.nova|cohere\.command-r|meta\.llama(?:3-[1-9]|4)"
    r"|mistral\.(?:mistral-large|pixtral|ministral|magistral|devstral)|ai21\.jamba|writer\.palmyra-x"
    r"|deepseek\.|qwen\.|openai\.)"
)


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def parse_entry(entry: Any, price_id: str | None = "aws") -> DiscoveredModel | None:
    """One model summary, or ``None`` when it has no id, writes no text, is not active or cannot
    be called on demand."""
    if not isinstance(entry, dict):
        return None
    model_id = entry.get("modelId")
    if not isinstance(model_id, str) or not model_id or "TEXT" not in _strings(entry.get("outputModalities")):
        return None
    lifecycle = entry.get("modelLifecycle")
    status = lifecycle.get("status") if isinstance(lifecycle, dict) else None
    inference = _strings(entry.get("inferenceTypesSupported"))
    if status not in (None, "ACTIVE") or (inference and "ON_DEMAND" not in inference):
        return None
    ctx, price_in, price_out = fill_missing(price_id, model_id, None, None, None)
    name = entry.get("modelName")
    name = name if isinstance(name, str) and name else model_id
    capabilities = infer_capabilities(
        model_id,
        name=name,
        input_modalities=[m.lower() for m in _strings(entry.get("inputModalities"))],
        ctx_length=ctx,
        function_calling=_TOOLS.match(model_id) is not None or name_suggests_tools(model_id),
    )
    return DiscoveredModel(
        external_id=model_id,
        display_name=name,
        model_type="chat",
        capabilities=capabilities,
        ctx_length=ctx,
        pricing_input=price_in,
        pricing_output=price_out,
        metadata=entry,
    )


def parse_page(payload: Any, price_id: str | None = "aws") -> tuple[list[DiscoveredModel], str | None]:
    """The models of a ListFoundationModels answer; no pagination."""
    data = payload.get("modelSummaries") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise UnexpectedPayload("expected an object with a 'modelSummaries' list")
    found = [parse_entry(entry, price_id) for entry in data]
    return [m for m in found if m is not None], None
