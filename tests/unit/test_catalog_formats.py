"""Parsing provider model lists: wire formats, prices, capabilities, tiers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from turnout.modelinfo import capabilities as caps
from turnout.modelinfo.discovered import (
    CAPABILITIES,
    DiscoveredModel,
    UnexpectedPayload,
    capabilities_from_mask,
    capability_mask,
    ordered_capabilities,
)
from turnout.modelinfo.pricing import lookup_price
from turnout.modelinfo.tiers import cost_tier_for
from turnout.providers.anthropic import models as anthropic
from turnout.providers.ollama import models as ollama
from turnout.providers.openai_compat import models as openai
from turnout.providers.openai_compat import openrouter_models as openrouter
from turnout.providers.registry import PROVIDER_TYPES, WIRE_FORMATS, spec_for

D = Decimal
ALL = ("text", "vision", "long_context", "function_calling")

# One entry exactly as GET https://openrouter.ai/api/v1/models returns it.
GPT_4O_MINI = orjson.loads(b"""{
  "id": "openai/gpt-4o-mini", "canonical_slug": "openai/gpt-4o-mini", "hugging_face_id": null,
  "name": "OpenAI: GPT-4o-mini", "created": 1721260800,
  "description": "GPT-4o mini is OpenAI's newest model after GPT-4 Omni.", "context_length": 128000,
  "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image", "file"],
                   "output_modalities": ["text"], "tokenizer": "GPT", "instruct_type": null},
  "pricing": {"prompt": "0.00000015", "completion": "0.0000006", "request": "0", "image": "0.000217",
              "web_search": "0", "internal_reasoning": "0", "input_cache_read": "0.000000075"},
  "top_provider": {"context_length": 128000, "max_completion_tokens": 16384, "is_moderated": true},
  "per_request_limits": null,
  "supported_parameters": ["frequency_penalty", "logit_bias", "logprobs", "max_tokens", "response_format",
                           "seed", "stop", "structured_outputs", "temperature", "tool_choice", "tools"]
}""")


def _or(mid: str, prices: str, io: str, ctx: int = 128000, params: tuple[str, ...] = ("tools",)) -> Any:
    """A variation of the real entry: ``prices`` "prompt/completion", ``io`` "text+image->text"."""
    prompt, completion = prices.split("/")
    inputs, outputs = (side.split("+") for side in io.split("->"))
    arch = {"modality": io, "input_modalities": inputs, "output_modalities": outputs, "tokenizer": "Other"}
    pricing = {**GPT_4O_MINI["pricing"], "prompt": prompt, "completion": completion}
    entry = {**GPT_4O_MINI, "id": mid, "canonical_slug": mid, "name": mid, "context_length": ctx}
    return {**entry, "architecture": arch, "pricing": pricing, "supported_parameters": list(params)}


OPENROUTER = {
    "data": [
        GPT_4O_MINI,
        _or("deepseek/deepseek-r1:free", "0/0", "text->text", 163840, ("max_tokens", "reasoning")),
        _or("openrouter/auto", "-1/-1", "text+image->text", 2000000, ()),
        _or("qwen/qwen-2.5-coder-32b-instruct", "0.00000006/0.00000015", "text->text", 32768),
        _or("openai/gpt-4o-audio-preview", "0.0000025/0.00001", "text+audio->text+audio"),
        _or("black-forest-labs/flux-1.1-pro", "0.00004/0", "text->image"),
        _or("anthropic/claude-opus-4.1", "0.000015/0.000075", "image+text+file->text", 200000),
    ]
}
OPENAI = orjson.loads(b"""{"object": "list", "data": [
  {"id": "gpt-4o-2024-08-06", "object": "model", "created": 1722814719, "owned_by": "system"},
  {"id": "o3-mini", "object": "model", "created": 1737146383, "owned_by": "system"},
  {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
  {"id": "dall-e-3", "object": "model", "created": 1698785189, "owned_by": "system"},
  {"id": "gpt-4o-mini-tts", "object": "model", "created": 1742403959, "owned_by": "system"},
  {"id": "whisper-1", "object": "model", "created": 1677532384, "owned_by": "openai-internal"},
  {"id": "ft:gpt-4o-mini-2024-07-18:acme::AbCdEf12", "object": "model", "created": 1, "owned_by": "acme"}
]}""")


def by_id(models: list[DiscoveredModel]) -> dict[str, DiscoveredModel]:
    return {m.external_id: m for m in models}


def prices(m: DiscoveredModel) -> tuple[Any, ...]:
    return m.pricing_input, m.pricing_output, m.cost_tier


def test_capability_mask_roundtrip() -> None:
    assert capability_mask([]) == 0
    assert capability_mask(["text"]) == 1
    assert capability_mask(["function_calling", "vision"]) == (1 << 5) | (1 << 1)
    assert capabilities_from_mask(capability_mask(CAPABILITIES)) == CAPABILITIES
    assert ordered_capabilities(["long_context", "text", "text"]) == ("text", "long_context")
    with pytest.raises(ValueError, match="unknown capability"):
        capability_mask(["telepathy"])


# "in out tier" per 1M tokens; blend (3*in + out) / 4: 0.15/0.6 -> 0.2625, 0.8/4 -> 1.6, 2.5/10 -> 4.375
TIERS = ["0 0 free", "0 - free", "0.15 0.6 low", "0.02 - low", "0.8 4 standard", "1 1 standard",
         "2.5 10 standard", "10 10 premium", "15 75 premium", "- - standard", "-1 -1 standard"]  # fmt: skip


@pytest.mark.parametrize("row", TIERS)
def test_cost_tier_thresholds(row: str) -> None:
    pin, pout, tier = (None if v == "-" else v for v in row.split())
    assert cost_tier_for(pin and D(pin), pout and D(pout)) == tier


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.0000025", "2.5"), ("0.000015", "15"), ("0.000000075", "0.075"), ("1e-7", "0.1"),
     (2.5e-06, "2.5"), ("0", "0"), (0, "0")],
)  # fmt: skip
def test_openrouter_price_strings_are_converted_exactly(raw: Any, expected: str) -> None:
    got = openrouter.per_token_to_mtok(raw)
    assert got == D(expected) and str(got) == expected


@pytest.mark.parametrize("raw", ["-1", None, "", "abc", "NaN", "Infinity", "-0.5", True])
def test_openrouter_unknown_prices(raw: Any) -> None:
    assert openrouter.per_token_to_mtok(raw) is None


def test_openrouter_format() -> None:
    found = by_id(openrouter.parse(OPENROUTER))
    assert "black-forest-labs/flux-1.1-pro" not in found  # image output only
    mini = found["openai/gpt-4o-mini"]
    assert (mini.display_name, mini.model_type, mini.ctx_length) == ("OpenAI: GPT-4o-mini", "chat", 128000)
    assert prices(mini) == (D("0.15"), D("0.6"), "low")
    assert mini.capabilities == ALL and mini.metadata is GPT_4O_MINI
    free = found["deepseek/deepseek-r1:free"]
    assert prices(free) == (0, 0, "free") and free.capabilities == ("text", "long_context")
    assert prices(found["openrouter/auto"]) == (None, None, "standard")  # "-1": unknown
    coder = found["qwen/qwen-2.5-coder-32b-instruct"]
    assert coder.capabilities == ("text", "code", "function_calling") and coder.cost_tier == "low"
    assert "audio" in found["openai/gpt-4o-audio-preview"].capabilities
    assert found["anthropic/claude-opus-4.1"].cost_tier == "premium"


def test_openrouter_missing_price_is_filled_from_genai_prices() -> None:
    model = openrouter.parse({"data": [_or("openai/gpt-4o-mini", "-1/-1", "text->text")]})[0]
    assert prices(model) == (D("0.15"), D("0.6"), "low")


def test_openai_format() -> None:
    found = by_id(openai.parse(OPENAI))
    tuned = "ft:gpt-4o-mini-2024-07-18:acme::AbCdEf12"
    assert set(found) == {"gpt-4o-2024-08-06", "o3-mini", "text-embedding-3-small", tuned}  # no image/speech
    gpt = found["gpt-4o-2024-08-06"]
    assert (gpt.ctx_length, *prices(gpt)) == (128000, D("2.5"), D(10), "standard")
    assert gpt.capabilities == ALL and gpt.metadata["owned_by"] == "system"
    emb = found["text-embedding-3-small"]
    assert emb.model_type == "embedding" and emb.capabilities == ("text",)
    assert prices(emb) == (D("0.02"), None, "low")
    assert found["o3-mini"].ctx_length == 200000


def test_custom_openai_compatible_server_extras() -> None:
    payload = orjson.loads(b"""{"object": "list", "data": [
      {"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "owned_by": "vllm",
       "max_model_len": 131072},
      {"id": "my-private-model", "object": "model", "owned_by": "me"},
      {"id": "pixtral-large-latest", "object": "model", "max_context_length": 131072,
       "capabilities": {"completion_chat": true, "function_calling": true, "vision": true}},
      {"id": "mistral-ocr-latest", "capabilities": {"completion_chat": false, "ocr": true}},
      {"object": "model"}, "junk"
    ]}""")
    found = by_id(openai.parse(payload, spec_for("custom").price_id))
    assert set(found) == {"meta-llama/Llama-3.1-8B-Instruct", "my-private-model", "pixtral-large-latest"}
    llama = found["meta-llama/Llama-3.1-8B-Instruct"]
    assert llama.ctx_length == 131072 and "long_context" in llama.capabilities
    private = found["my-private-model"]
    assert private.ctx_length is None and private.capabilities == ("text",)
    assert prices(private) == (None, None, "standard")
    assert found["pixtral-large-latest"].capabilities == ALL


def test_azure_format_uses_reported_capabilities() -> None:
    flags = ("fine_tune", "inference", "completion", "chat_completion", "embeddings")
    kinds = {
        "gpt-4o-2024-08-06": "01010",
        "text-embedding-3-large": "01001",
        "gpt-35-turbo-instruct": "01100",
    }
    data = [
        {"status": "succeeded", "id": mid, "object": "model", "created_at": 1715558400,
         "capabilities": {f: bit == "1" for f, bit in zip(flags, bits, strict=True)}}
        for mid, bits in kinds.items()
    ]  # fmt: skip
    found = by_id(openai.parse({"object": "list", "data": data}, spec_for("azure").price_id))
    assert set(found) == {"gpt-4o-2024-08-06", "text-embedding-3-large"}  # completion-only model left out
    assert found["text-embedding-3-large"].model_type == "embedding"
    gpt = found["gpt-4o-2024-08-06"]
    assert gpt.pricing_input == D("2.5") and "vision" in gpt.capabilities  # Azure falls back to OpenAI prices


ANTHROPIC_PAGE = orjson.loads(b"""{"data": [
  {"type": "model", "id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1",
   "created_at": "2025-08-05T00:00:00Z"},
  {"type": "model", "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5",
   "created_at": "2024-10-22T00:00:00Z", "max_input_tokens": 150000, "lifecycle": "active",
   "capabilities": {"image_input": {"supported": false}, "pdf_input": {"supported": true}}},
  {"type": "model", "id": "claude-2.1", "display_name": "Claude 2.1", "created_at": "2023-11-21T00:00:00Z"},
  {"type": "model", "id": "claude-old", "display_name": "Old", "created_at": "2023-01-01T00:00:00Z",
   "lifecycle": "retired"}
 ], "has_more": true, "first_id": "claude-opus-4-1-20250805", "last_id": "claude-old"}""")


def test_anthropic_page_and_cursor() -> None:
    models, cursor = anthropic.parse_page(ANTHROPIC_PAGE)
    assert cursor == "claude-old"
    found = by_id(models)
    assert "claude-old" not in found  # retired
    opus = found["claude-opus-4-1-20250805"]
    assert (opus.display_name, opus.ctx_length) == ("Claude Opus 4.1", 200000)
    assert prices(opus) == (15, 75, "premium")
    assert opus.capabilities == ALL
    haiku = found["claude-3-5-haiku-20241022"]
    assert haiku.ctx_length == 150000 and "vision" not in haiku.capabilities  # as reported
    assert found["claude-2.1"].capabilities == ("text", "long_context")
    assert anthropic.parse_page({**ANTHROPIC_PAGE, "has_more": False})[1] is None
    first = ANTHROPIC_PAGE["data"][:1]
    assert anthropic.parse_page({"data": first, "has_more": True})[1] == first[0]["id"]


def test_ollama_format() -> None:
    def tag(name: str, *families: str, **extra: Any) -> dict[str, Any]:
        details = {"parent_model": "", "format": "gguf", "family": families[0], "families": list(families)}
        details |= {"parameter_size": "8.0B", "quantization_level": "Q4_0"}
        entry = {"name": name, "model": name, "modified_at": "2024-05-01T12:00:00-07:00", "size": 4661224676}
        return {**entry, "digest": "a" * 64, "details": details, **extra}

    cloud = tag("gpt-oss:120b-cloud", "gptoss", remote_host="https://ollama.com:443")
    payload = {"models": [tag("llama3.1:latest", "llama"), tag("llava:13b", "llama", "clip"), cloud]}
    payload["models"] += [tag("nomic-embed-text:latest", "nomic-bert"), tag("qwen2.5-coder:7b", "qwen2")]
    found = by_id(ollama.parse(payload))
    llama = found["llama3.1:latest"]
    assert (llama.display_name, llama.ctx_length) == ("llama3.1", None)
    assert llama.capabilities == ("text", "function_calling")
    assert prices(llama) == (0, 0, "free")  # local models cost nothing
    assert "vision" in found["llava:13b"].capabilities
    assert found["nomic-embed-text:latest"].model_type == "embedding"
    assert "code" in found["qwen2.5-coder:7b"].capabilities
    assert prices(found["gpt-oss:120b-cloud"]) == (None, None, "standard")


@pytest.mark.parametrize("fmt", [openai, openrouter, anthropic, ollama])
@pytest.mark.parametrize("payload", [[], {"data": {}}, {"object": "list"}, "x", None])
def test_wrong_shape_is_rejected(fmt: Any, payload: Any) -> None:
    with pytest.raises(UnexpectedPayload):
        fmt.parse(payload)


# id -> flags: e(mbedding), c(ode), v(ision)
SIGNALS = {"text-embedding-3-large": "e", "BAAI/bge-m3": "e", "intfloat/multilingual-e5-large": "e",
           "mxbai-embed-large": "e", "mistralai/codestral-2501": "c", "deepseek-coder-v2:16b": "c",
           "devstral-small": "c", "bigcode/starcoder2-15b": "c", "qwen2.5vl:7b": "v",
           "llama3.2-vision:11b": "v", "llama3.1:8b": ""}  # fmt: skip


@pytest.mark.parametrize(("model_id", "flags"), SIGNALS.items())
def test_name_signals(model_id: str, flags: str) -> None:
    assert caps.is_embedding(model_id) is ("e" in flags)
    assert caps.is_code_model(model_id) is ("c" in flags)
    assert caps.name_suggests_vision(model_id) is ("v" in flags)


def test_infer_capabilities_signals() -> None:
    assert caps.infer_capabilities("x") == ("text",)
    assert caps.infer_capabilities("x", input_modalities=["image", "audio"]) == ("text", "vision", "audio")
    assert caps.infer_capabilities("x", supported_parameters=["tool_choice"]) == ("text", "function_calling")
    assert caps.infer_capabilities("x", ctx_length=99_999) == ("text",)
    assert caps.infer_capabilities("x", ctx_length=100_000) == ("text", "long_context")
    assert caps.infer_capabilities("starcoder", model_type="embedding", function_calling=True) == ("text",)


def test_genai_prices_fill_known_models_and_leave_unknown_alone() -> None:
    info = lookup_price(spec_for("openai").price_id, "gpt-4o")
    assert info is not None
    assert (info.input_per_mtok, info.output_per_mtok, info.context_window) == (D("2.5"), D(10), 128000)
    assert lookup_price(spec_for("openrouter").price_id, "openai/gpt-4o") is not None
    assert (
        lookup_price(spec_for("custom").price_id, "openai/gpt-4o-mini") is not None
    )  # vendor prefix dropped
    for provider, model_id in [("openai", "no-such-model"), ("custom", ""), ("anthropic", "ünïcødé/ü")]:
        assert lookup_price(spec_for(provider).price_id, model_id) is None


def test_registry_covers_every_provider_type() -> None:
    assert set(WIRE_FORMATS) == set(PROVIDER_TYPES)
    assert WIRE_FORMATS["azure"].parse_page is WIRE_FORMATS["custom"].parse_page is openai.parse_page
    assert WIRE_FORMATS["anthropic"].paginated and not WIRE_FORMATS["openrouter"].paginated
