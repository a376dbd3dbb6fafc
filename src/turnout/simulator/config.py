"""Simulator settings and the per-provider default model lists."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

DEFAULT_OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
DEFAULT_ANTHROPIC_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5")
DEFAULT_OLLAMA_MODELS = ("llama3.2:latest", "nomic-embed-text:latest")
DEFAULT_BEDROCK_MODELS = ("anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-lite-v1:0")
DEFAULT_OPENROUTER_MODELS = (
    "openai/gpt-4o-mini",
    "anthropic/claude-haiku-4.5",
    "meta-llama/llama-3.3-70b-instruct:free",
    "openai/text-embedding-3-small",
)


@dataclass(slots=True)
class SimulatorConfig:
    """How the simulated upstream behaves; every field may be changed while it runs.

    ``latency_ms`` is waited before the first response byte; ``tokens_per_second`` paces stream
    chunks (and delays a non-streamed answer by ``tokens / tps``; 0 = as fast as possible).
    ``api_key`` set: OpenAI and OpenRouter routes want ``Authorization: Bearer <key>``, Azure
    routes ``api-key: <key>``, Anthropic routes ``x-api-key: <key>`` (or the Bearer form newer
    SDKs send); Ollama routes (and OpenRouter's model list) stay open. ``models`` replaces every
    provider's model list (``None``: per-provider defaults); ``strict_models`` answers 404 for a
    model not listed. ``reply_text`` fixes the
    answer; otherwise it is ``"Echo: <first words of the last user message>"`` padded with lorem
    words to ``reply_tokens`` words (one word is one token).

    ``flavor`` ``"llama.cpp"`` gives the OpenAI routes the quirks of llama.cpp's server (as met with
    llama-cpp-python and llama-server): a message whose ``content`` is null gets 500 "Expected
    'content' to be a string or an array", and streams carry no usage even when asked for it.

    ``cached_tokens`` / ``reasoning_tokens``: how many of the prompt's tokens the OpenAI routes'
    usage reports as read from the prompt cache, and how many of the answer's as reasoning (each
    capped at its total), as OpenAI's ``*_tokens_details`` do.

    ``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_region``: the AWS key pair and region
    the Bedrock routes verify SigV4 signatures with (the secret None: no verification).
    """

    latency_ms: float = 0.0
    tokens_per_second: float = 0.0
    api_key: str | None = None
    models: list[str] | None = None
    reply_text: str | None = None
    reply_tokens: int = 16
    embedding_dimensions: int = 8
    strict_models: bool = False
    flavor: str = "openai"
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    aws_access_key_id: str | None = "AKIASIMULATOR0EXAMPL"
    aws_secret_access_key: str | None = "sim/Secret+Access/Key0000000000000000000"
    aws_region: str = "us-east-1"

    def update(self, changes: dict[str, Any]) -> None:
        """Set the named fields; unknown names raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        for name, value in changes.items():
            if not _valid(name, value):
                raise ValueError(f"invalid value for {name}: {value!r}")
        for name, value in changes.items():
            setattr(self, name, float(value) if name in _FLOATS else value)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, with the key replaced by whether one is set."""
        out = asdict(self)
        out["api_key"] = "set" if self.api_key else None
        out["aws_secret_access_key"] = "set" if self.aws_secret_access_key else None
        return out

    def model_list(self, defaults: tuple[str, ...]) -> tuple[str, ...]:
        """The configured models, or the provider's defaults."""
        return tuple(self.models) if self.models else defaults


_FLOATS = ("latency_ms", "tokens_per_second")
FLAVORS = ("openai", "llama.cpp")


def _valid(name: str, value: Any) -> bool:
    """Whether ``value`` fits the field ``name`` (for changes arriving as JSON)."""
    if name in _FLOATS:
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if name in ("reply_tokens", "embedding_dimensions"):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if name in ("cached_tokens", "reasoning_tokens"):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if name == "strict_models":
        return isinstance(value, bool)
    if name == "flavor":
        return value in FLAVORS
    if name == "aws_region":
        return isinstance(value, str) and bool(value)
    if name == "models":
        return value is None or (isinstance(value, list) and all(isinstance(m, str) and m for m in value))
    return value is None or isinstance(value, str)
