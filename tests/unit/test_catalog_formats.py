"""Parsing provider model lists: wire formats, prices, capabilities, tiers."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from turnout.catalog import capabilities as caps
from turnout.catalog.discovered import (
    CAPABILITIES,
    UnexpectedPayload,
    capabilities_from_mask,
    capability_mask,
    ordered_capabilities,
)
from turnout.catalog.fetch import ProviderConnection, ProviderSyncError, auth_headers, models_url
from turnout.catalog.formats import WIRE_FORMATS, anthropic, ollama, openai, openrouter
from turnout.catalog.pricing import lookup_price
from turnout.catalog.tiers import cost_tier_for

D = Decimal


def _or(
    mid: str, prompt: str, completion: str, inputs: list[str], outputs: list[str], **kw: Any
) -> dict[str, Any]:
    """A real-looking OpenRouter entry (shape of GET https://openrouter.ai/api/v1/models)."""
    return {
        "id": mid,
        "canonical_slug": kw.get("slug", mid),
        "hugging_face_id": None,
        "name": kw.get("name", mid),
        "created": 1721260800,
        "description": "…",
        "context_length": kw.get("ctx", 128000),
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": "GPT",
            "instruct_type": None,
        },
        "pricing": {"prompt": prompt, "completion": completion, "request": "0", "image": "0", "web_search": "0",
                    "internal_reasoning": "0", "input_cache_read": "0.000000075"},
        "top_provider": {"context_length": kw.get("ctx", 128000), "max_completion_tokens": 16384, "is_moderated": True},
        "per_request_limits": None,
        "supported_parameters": kw.get("params", ["max_tokens", "temperature", "tools", "tool_choice", "seed"]),
    }  # fmt: skip


OPENROUTER = {
    "data": [
        _or("openai/gpt-4o-mini", "0.00000015", "0.0000006", ["text", "image", "file"], ["text"], name="OpenAI: GPT-4o-mini"),
        _or("deepseek/deepseek-r1:free", "0", "0", ["text"], ["text"], ctx=163840, params=["max_tokens", "reasoning"]),
        _or("openrouter/auto", "-1", "-1", ["text", "image"], ["text"], ctx=2000000, params=[]),
        _or("qwen/qwen-2.5-coder-32b-instruct", "0.00000006", "0.00000015", ["text"], ["text"], ctx=32768),
        _or("openai/gpt-4o-audio-preview", "0.0000025", "0.00001", ["text", "audio"], ["text", "audio"]),
        _or("black-forest-labs/flux-1.1-pro", "0.00004", "0", ["text"], ["image"]),
        _or("anthropic/claude-opus-4.1", "0.000015", "0.000075", ["image", "text", "file"], ["text"], ctx=200000),
    ]
}  # fmt: skip
OPENAI = {
    "object": "list",
    "data": [
        {"id": "gpt-4o-2024-08-06", "object": "model", "created": 1722814719, "owned_by": "system"},
        {"id": "o3-mini", "object": "model", "created": 1737146383, "owned_by": "system"},
        {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
        {"id": "dall-e-3", "object": "model", "created": 1698785189, "owned_by": "system"},
        {"id": "gpt-4o-mini-tts", "object": "model", "created": 1742403959, "owned_by": "system"},
        {"id": "whisper-1", "object": "model", "created": 1677532384, "owned_by": "openai-internal"},
        {
            "id": "ft:gpt-4o-mini-2024-07-18:acme::AbCdEf12",
            "object": "model",
            "created": 1,
            "owned_by": "acme",
        },
    ],
}


def by_id(models: list[Any]) -> dict[str, Any]:
    return {m.external_id: m for m in models}


def test_capability_mask_roundtrip() -> None:
    assert capability_mask([]) == 0
    assert capability_mask(["text"]) == 1
    assert capability_mask(["function_calling", "vision"]) == (1 << 5) | (1 << 1)
    assert capabilities_from_mask(capability_mask(CAPABILITIES)) == CAPABILITIES
    assert ordered_capabilities(["long_context", "text", "text"]) == ("text", "long_context")
    with pytest.raises(ValueError, match="unknown capability"):
        capability_mask(["telepathy"])


@pytest.mark.parametrize(
    ("pin", "pout", "tier"),
    [
        (D(0), D(0), "free"),
        (D(0), None, "free"),
        (D("0.15"), D("0.6"), "low"),  # blend 0.2625
        (D("0.02"), None, "low"),  # embeddings bill input only
        (D("0.8"), D("4"), "standard"),  # blend 1.6
        (D(1), D(1), "standard"),  # exactly $1 is no longer "low"
        (D("2.5"), D("10"), "standard"),  # blend 4.375
        (D("3"), D("15"), "standard"),  # blend 6
        (D(10), D(10), "premium"),  # exactly $10
        (D("15"), D("75"), "premium"),  # blend 30
        (None, None, "standard"),
        (D(-1), D(-1), "standard"),
    ],
)
def test_cost_tier_thresholds(pin: Decimal | None, pout: Decimal | None, tier: str) -> None:
    assert cost_tier_for(pin, pout) == tier


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.0000025", "2.5"), ("0.000015", "15"), ("0.00000006", "0.06"), ("0.000000075", "0.075"), ("1e-7", "0.1"),
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
    assert (mini.pricing_input, mini.pricing_output, mini.cost_tier) == (D("0.15"), D("0.6"), "low")
    assert mini.capabilities == ("text", "vision", "long_context", "function_calling")
    assert mini.metadata["canonical_slug"] == "openai/gpt-4o-mini"
    free = found["deepseek/deepseek-r1:free"]
    assert (free.pricing_input, free.pricing_output, free.cost_tier) == (0, 0, "free")
    assert free.capabilities == ("text", "long_context")
    auto = found["openrouter/auto"]
    assert (auto.pricing_input, auto.pricing_output, auto.cost_tier) == (None, None, "standard")
    coder = found["qwen/qwen-2.5-coder-32b-instruct"]
    assert coder.capabilities == ("text", "code", "function_calling") and coder.cost_tier == "low"
    assert "audio" in found["openai/gpt-4o-audio-preview"].capabilities
    assert found["anthropic/claude-opus-4.1"].cost_tier == "premium"


def test_openrouter_missing_price_is_filled_from_genai_prices() -> None:
    entry = _or("openai/gpt-4o-mini", "-1", "-1", ["text"], ["text"])
    model = openrouter.parse({"data": [entry]})[0]
    assert (model.pricing_input, model.pricing_output) == (D("0.15"), D("0.6"))


def test_openai_format() -> None:
    found = by_id(openai.parse(OPENAI))
    assert set(found) == {
        "gpt-4o-2024-08-06",
        "o3-mini",
        "text-embedding-3-small",
        "ft:gpt-4o-mini-2024-07-18:acme::AbCdEf12",
    }
    gpt = found["gpt-4o-2024-08-06"]
    assert (gpt.ctx_length, gpt.pricing_input, gpt.pricing_output, gpt.cost_tier) == (
        128000,
        D("2.5"),
        D(10),
        "standard",
    )
    assert gpt.capabilities == ("text", "vision", "long_context", "function_calling")
    emb = found["text-embedding-3-small"]
    assert (emb.model_type, emb.pricing_input, emb.pricing_output, emb.cost_tier) == (
        "embedding",
        D("0.02"),
        None,
        "low",
    )
    assert emb.capabilities == ("text",)
    assert found["o3-mini"].ctx_length == 200000
    assert found["gpt-4o-2024-08-06"].metadata["owned_by"] == "system"  # fmt: skip


def test_custom_openai_compatible_server_extras() -> None:
    payload = {"object": "list", "data": [
        {"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "owned_by": "vllm", "max_model_len": 131072},
        {"id": "my-private-model", "object": "model", "owned_by": "me"},
        {"id": "pixtral-large-latest", "object": "model", "max_context_length": 131072,
         "capabilities": {"completion_chat": True, "function_calling": True, "vision": True}},
        {"id": "mistral-ocr-latest", "object": "model", "capabilities": {"completion_chat": False, "ocr": True}},
        {"object": "model"}, "junk",
    ]}  # fmt: skip
    found = by_id(openai.parse(payload, "custom"))
    assert set(found) == {"meta-llama/Llama-3.1-8B-Instruct", "my-private-model", "pixtral-large-latest"}
    llama = found["meta-llama/Llama-3.1-8B-Instruct"]
    assert llama.ctx_length == 131072 and "long_context" in llama.capabilities
    private = found["my-private-model"]
    assert (private.ctx_length, private.pricing_input, private.cost_tier, private.capabilities) == (
        None, None, "standard", ("text",))  # fmt: skip
    assert found["pixtral-large-latest"].capabilities == (
        "text",
        "vision",
        "long_context",
        "function_calling",
    )


def test_azure_format_uses_reported_capabilities() -> None:
    entry = {
        "status": "succeeded",
        "lifecycle_status": "generally-available",
        "object": "model",
        "created_at": 1,
    }
    flags = ("fine_tune", "inference", "completion", "chat_completion", "embeddings")
    payload = {"object": "list", "data": [
        {**entry, "id": "gpt-4o-2024-08-06", "capabilities": dict(zip(flags, (0, 1, 0, 1, 0), strict=True))},
        {**entry, "id": "text-embedding-3-large", "capabilities": dict(zip(flags, (0, 1, 0, 0, 1), strict=True))},
        {**entry, "id": "gpt-35-turbo-instruct", "capabilities": dict(zip(flags, (0, 1, 1, 0, 0), strict=True))},
    ]}  # fmt: skip
    for e in payload["data"]:
        e["capabilities"] = {k: bool(v) for k, v in e["capabilities"].items()}
    found = by_id(openai.parse(payload, "azure"))
    assert set(found) == {"gpt-4o-2024-08-06", "text-embedding-3-large"}
    assert found["text-embedding-3-large"].model_type == "embedding"
    assert found["gpt-4o-2024-08-06"].pricing_input == D("2.5")  # azure falls back to OpenAI prices
    assert "vision" in found["gpt-4o-2024-08-06"].capabilities


def test_anthropic_page_and_cursor() -> None:
    page = {
        "data": [
            {"type": "model", "id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1",
             "created_at": "2025-08-05T00:00:00Z"},
            {"type": "model", "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5",
             "created_at": "2024-10-22T00:00:00Z", "max_input_tokens": 150000,
             "capabilities": {"image_input": {"supported": False}, "pdf_input": {"supported": True}}},
            {"type": "model", "id": "claude-2.1", "display_name": "Claude 2.1", "created_at": "2023-11-21T00:00:00Z"},
            {"type": "model", "id": "claude-old", "display_name": "Old", "created_at": "2023-01-01T00:00:00Z",
             "lifecycle": "retired"},
        ],
        "has_more": True, "first_id": "claude-opus-4-1-20250805", "last_id": "claude-old",
    }  # fmt: skip
    models, cursor = anthropic.parse_page(page)
    assert cursor == "claude-old"
    found = by_id(models)
    assert "claude-old" not in found
    opus = found["claude-opus-4-1-20250805"]
    assert (opus.display_name, opus.ctx_length, opus.pricing_input, opus.pricing_output) == (
        "Claude Opus 4.1", 200000, D(15), D(75))  # fmt: skip
    assert (
        opus.capabilities == ("text", "vision", "long_context", "function_calling")
        and opus.cost_tier == "premium"
    )
    haiku = found["claude-3-5-haiku-20241022"]
    assert haiku.ctx_length == 150000 and "vision" not in haiku.capabilities
    assert found["claude-2.1"].capabilities == ("text", "long_context")
    assert anthropic.parse_page({**page, "has_more": False})[1] is None
    assert anthropic.parse_page({"data": page["data"][:1], "has_more": True, "last_id": None})[1] == (
        "claude-opus-4-1-20250805")  # fmt: skip


def test_ollama_format() -> None:
    def tag(name: str, family: str, families: list[str], **extra: Any) -> dict[str, Any]:
        details = {"parent_model": "", "format": "gguf", "family": family, "families": families,
                   "parameter_size": "8.0B", "quantization_level": "Q4_0"}  # fmt: skip
        return {"name": name, "model": name, "modified_at": "2024-05-01T12:00:00-07:00", "size": 4661224676,
                "digest": "a" * 64, "details": details, **extra}  # fmt: skip

    payload = {"models": [tag("llama3.1:latest", "llama", ["llama"]), tag("llava:13b", "llama", ["llama", "clip"]),
                          tag("nomic-embed-text:latest", "nomic-bert", ["nomic-bert"]),
                          tag("qwen2.5-coder:7b", "qwen2", ["qwen2"]),
                          tag("gpt-oss:120b-cloud", "gptoss", ["gptoss"], remote_host="https://ollama.com:443")]}  # fmt: skip
    found = by_id(ollama.parse(payload))
    llama = found["llama3.1:latest"]
    assert (llama.display_name, llama.cost_tier, llama.pricing_input, llama.ctx_length) == (
        "llama3.1",
        "free",
        0,
        None,
    )
    assert llama.capabilities == ("text", "function_calling")
    assert "vision" in found["llava:13b"].capabilities
    assert found["nomic-embed-text:latest"].model_type == "embedding"
    assert "code" in found["qwen2.5-coder:7b"].capabilities
    cloud = found["gpt-oss:120b-cloud"]
    assert (cloud.pricing_input, cloud.cost_tier) == (None, "standard")


@pytest.mark.parametrize("fmt", [openai, openrouter, anthropic])
@pytest.mark.parametrize("payload", [[], {"data": {}}, {"models": []}, "x", None])
def test_wrong_shape_is_rejected(fmt: Any, payload: Any) -> None:
    with pytest.raises(UnexpectedPayload):
        fmt.parse(payload)


def test_ollama_wrong_shape() -> None:
    with pytest.raises(UnexpectedPayload):
        ollama.parse({"data": []})


@pytest.mark.parametrize(
    ("model_id", "embedding", "code", "vision"),
    [("text-embedding-3-large", True, False, False), ("BAAI/bge-m3", True, False, False),
     ("intfloat/multilingual-e5-large", True, False, False), ("mxbai-embed-large", True, False, False),
     ("mistralai/codestral-2501", False, True, False), ("deepseek-coder-v2:16b", False, True, False),
     ("devstral-small", False, True, False), ("codellama:7b", False, True, False), ("bigcode/starcoder2-15b", False, True, False),
     ("qwen2.5vl:7b", False, False, True), ("llama3.2-vision:11b", False, False, True), ("gpt-4o-mini", False, False, True),
     ("llama3.1:8b", False, False, False)],
)  # fmt: skip
def test_name_signals(model_id: str, embedding: bool, code: bool, vision: bool) -> None:
    assert caps.is_embedding(model_id) is embedding
    assert caps.is_code_model(model_id) is code
    assert caps.name_suggests_vision(model_id) is vision


def test_infer_capabilities_signals() -> None:
    assert caps.infer_capabilities("x") == ("text",)
    assert caps.infer_capabilities("x", input_modalities=["text", "image", "audio"]) == (
        "text",
        "vision",
        "audio",
    )
    assert caps.infer_capabilities("x", supported_parameters=["tool_choice"]) == ("text", "function_calling")
    assert caps.infer_capabilities("x", ctx_length=99_999) == ("text",)
    assert caps.infer_capabilities("x", ctx_length=100_000) == ("text", "long_context")
    assert caps.infer_capabilities("starcoder", model_type="embedding", function_calling=True) == ("text",)


def test_genai_prices_fill_known_models_and_leave_unknown_alone() -> None:
    info = lookup_price("openai", "gpt-4o")
    assert info is not None
    assert (info.input_per_mtok, info.output_per_mtok, info.context_window) == (D("2.5"), D(10), 128000)
    assert lookup_price("openrouter", "openai/gpt-4o") is not None
    assert lookup_price("custom", "openai/gpt-4o-mini") is not None  # vendor prefix dropped
    for provider, model_id in [("openai", "totally-unknown-model"), ("custom", ""), ("ollama", "llama3:8b"),
                               ("nonsense", "gpt-4o\x00"), ("anthropic", "ünïcødé/ü")]:  # fmt: skip
        assert lookup_price(provider, model_id) is None or provider == "nonsense"


def test_registry_covers_every_provider_type() -> None:
    from turnout.catalog.discovered import PROVIDER_TYPES

    assert set(WIRE_FORMATS) == set(PROVIDER_TYPES)
    assert WIRE_FORMATS["azure"].parse_page is WIRE_FORMATS["custom"].parse_page
    assert WIRE_FORMATS["anthropic"].paginated and not WIRE_FORMATS["openrouter"].paginated


@pytest.mark.parametrize(
    ("provider_type", "api_base", "endpoint", "url"),
    [("openai", "https://api.openai.com/v1/", None, "https://api.openai.com/v1/models"),
     ("openrouter", "https://openrouter.ai/api/v1", None, "https://openrouter.ai/api/v1/models"),
     ("anthropic", "https://api.anthropic.com", None, "https://api.anthropic.com/v1/models"),
     ("anthropic", "https://api.anthropic.com/v1", None, "https://api.anthropic.com/v1/models"),
     ("azure", "https://res.openai.azure.com", None, "https://res.openai.azure.com/openai/models"),
     ("ollama", "http://localhost:11434/v1", None, "http://localhost:11434/api/tags"),
     ("custom", "http://vllm:8000/v1", "/v1/models/", "http://vllm:8000/v1/v1/models/")],
)  # fmt: skip
def test_models_url(provider_type: str, api_base: str, endpoint: str | None, url: str) -> None:
    got, params = models_url(ProviderConnection(provider_type, api_base, endpoint, "2025-01-01"))
    assert got == url
    assert params == ({"api-version": "2025-01-01"} if provider_type == "azure" else {})


def test_models_url_refuses_absolute_endpoint_and_unknown_type() -> None:
    with pytest.raises(ProviderSyncError):
        models_url(ProviderConnection("openai", "https://api.openai.com/v1", "https://evil.example/models"))
    with pytest.raises(ProviderSyncError, match="unsupported provider type"):
        models_url(ProviderConnection("carrier-pigeon", "https://x"))


def test_auth_headers() -> None:
    assert auth_headers("openai", "k")["Authorization"] == "Bearer k"
    assert auth_headers("anthropic", "k") == {
        "Accept": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "k",
    }
    assert auth_headers("azure", "k")["api-key"] == "k"
    assert "Authorization" not in auth_headers("ollama", None)  # fmt: skip


def test_50k_openrouter_entries_parse_fast() -> None:
    from tests.upstreams.models_server import make_openrouter_models

    body = orjson.dumps({"data": make_openrouter_models(50_000)})
    started = time.perf_counter()
    models = openrouter.parse(orjson.loads(body))
    elapsed = time.perf_counter() - started
    assert len(models) == 50_000
    assert elapsed < 2.0, f"parsing 50k OpenRouter entries took {elapsed:.2f}s"


def test_50k_unknown_price_lookups_are_fast() -> None:
    started = time.perf_counter()
    misses = sum(lookup_price("openrouter", f"vendor{i}/unknown-model-{i}") is None for i in range(50_000))
    elapsed = time.perf_counter() - started
    assert misses == 50_000
    assert elapsed < 2.0, f"50k price lookups took {elapsed:.2f}s"
