"""Infer capabilities and model type from what a provider reports.

One small function per signal; :func:`infer_capabilities` combines them in ``CAPABILITIES`` order.
Name-based checks are heuristics for providers that report nothing better (OpenAI, Ollama, custom).
"""

from __future__ import annotations

import re
from collections.abc import Collection

LONG_CONTEXT_MIN = 100_000

_CODE_RE = re.compile(
    r"coder|codestral|codegemma|code-?llama|starcoder|devstral|codex|codeqwen|granite-code|codegeex"
    r"|stable-code|wizardcoder|sqlcoder"
)
_EMBEDDING_RE = re.compile(r"embed|(?:^|[/:_.-])(?:bge|gte|e5)(?:[:_.-]|$)|all-minilm")
_VISION_RE = re.compile(
    r"vision|llava|pixtral|internvl|(?:^|[\d.:_/-])vl\d*(?:[\d.:_/-]|$)|minicpm-v|moondream"
    r"|gpt-4o|gpt-4\.1|gpt-4\.5|gpt-4-turbo|gpt-5|chatgpt-4o|^o1(?!-mini|-preview)|^o3|^o4"
    r"|gemma3|llama4|mistral-small3\.[12]"
)
_AUDIO_RE = re.compile(r"audio|realtime|voxtral")
_TOOLS_RE = re.compile(
    r"^(?:gpt-(?:3\.5-turbo|4|5)|chatgpt|o[134])|llama3\.[123]|llama4|qwen2\.5|qwen3|mistral|mixtral"
    r"|command-r|hermes3|granite3|gpt-oss|firefunction|claude"
)
_NON_TEXT_RE = re.compile(
    r"^(?:dall-e|whisper|tts-|gpt-image|sora|davinci-00|babbage-00)|moderation|-transcribe|-tts(?:-|$)"
)
_EMBEDDING_FAMILIES = frozenset({"bert", "nomic-bert", "xlm-roberta", "bert-large", "jina-bert-v2"})


def is_embedding(model_id: str, output_modalities: Collection[str] = ()) -> bool:
    """An embedding model: reported by the provider, or suggested by the id (embed, bge, e5 ...)."""
    return "embeddings" in output_modalities or _EMBEDDING_RE.search(model_id.lower()) is not None


def is_embedding_family(family: str | None) -> bool:
    """Ollama ``details.family`` values that only exist for embedding models."""
    return family is not None and family.lower() in _EMBEDDING_FAMILIES


def is_non_text(model_id: str) -> bool:
    """Image, speech and moderation models an OpenAI-style list mixes in with chat models."""
    return _NON_TEXT_RE.search(model_id.lower()) is not None


def has_vision(input_modalities: Collection[str]) -> bool:
    """Image input is accepted."""
    return "image" in input_modalities


def has_audio(input_modalities: Collection[str]) -> bool:
    """Audio input is accepted."""
    return "audio" in input_modalities


def has_function_calling(supported_parameters: Collection[str]) -> bool:
    """OpenRouter-style ``supported_parameters`` list tools."""
    return "tools" in supported_parameters or "tool_choice" in supported_parameters


def is_long_context(ctx_length: int | None) -> bool:
    """A context window of at least 100k tokens."""
    return ctx_length is not None and ctx_length >= LONG_CONTEXT_MIN


def is_code_model(model_id: str, name: str = "") -> bool:
    """The id or name suggests a code model (coder, codestral, starcoder, devstral ...)."""
    return _CODE_RE.search(f"{model_id} {name}".lower()) is not None


def name_suggests_vision(model_id: str) -> bool:
    """Well-known vision model names, for providers that report no modalities."""
    return _VISION_RE.search(model_id.lower()) is not None


def name_suggests_audio(model_id: str) -> bool:
    """Well-known audio-input model names."""
    return _AUDIO_RE.search(model_id.lower()) is not None


def name_suggests_tools(model_id: str) -> bool:
    """Well-known families that support tool calling, for providers that do not say."""
    lowered = model_id.lower()
    return _TOOLS_RE.search(lowered) is not None and "turbo-instruct" not in lowered


def infer_capabilities(
    model_id: str,
    *,
    model_type: str = "chat",
    name: str = "",
    input_modalities: Collection[str] = (),
    supported_parameters: Collection[str] = (),
    ctx_length: int | None = None,
    vision: bool = False,
    audio: bool = False,
    function_calling: bool = False,
) -> tuple[str, ...]:
    """Capabilities in ``CAPABILITIES`` order; the keyword flags are what the provider says outright."""
    chat = model_type == "chat"
    caps: list[str] = ["text"]
    if vision or has_vision(input_modalities):
        caps.append("vision")
    if chat and is_code_model(model_id, name):
        caps.append("code")
    if audio or has_audio(input_modalities):
        caps.append("audio")
    if is_long_context(ctx_length):
        caps.append("long_context")
    if chat and (function_calling or has_function_calling(supported_parameters)):
        caps.append("function_calling")
    return tuple(caps)
