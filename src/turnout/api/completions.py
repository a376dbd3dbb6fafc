"""Legacy ``POST /v1/completions``: a ``prompt`` answered as a ``text_completion``, whole or streamed.

The prompt becomes one user message of a canonical chat call, so every chat model of every provider
serves it, with routing, budgets, failover and records as for chat (the record's endpoint says
``completions``). What only a raw completion model can do (``echo``, ``suffix``, ``best_of``,
``logprobs``, several prompts or token-id prompts) is refused with a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson

from turnout.api.dialects import OpenAIDialect
from turnout.domain.snapshot import ModelEntry
from turnout.errors import InvalidRequest
from turnout.translate.types import Chunk, Completion, WholeAnswer

PASSED_ON = ("max_tokens", "temperature", "top_p", "stop", "seed", "user", "presence_penalty",
             "frequency_penalty", "logit_bias", "stream", "stream_options", "n")  # fmt: skip
EXTENSIONS = ("metadata", "task_type", "fallbacks", "requirements")
_UNSUPPORTED = {
    "echo": lambda v: v not in (None, False),
    "suffix": lambda v: v is not None,
    "best_of": lambda v: v not in (None, 1),
    "logprobs": lambda v: v is not None,
}


def completions_chat_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A legacy completions body as a canonical chat body (checked again by ``parse_chat``)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest(
            "prompt must be a non-empty string (several prompts or token ids are not supported)",
            param="prompt",
        )
    for name, refused in _UNSUPPORTED.items():
        if refused(body.get(name)):
            raise InvalidRequest(f"{name} is not supported for chat models", param=name)
    canonical: dict[str, Any] = {
        "model": body.get("model"),
        "messages": [{"role": "user", "content": prompt}],
    }
    for key in (*PASSED_ON, *EXTENSIONS):
        if key in body:
            canonical[key] = body[key]
    if body.get("max_tokens") is None:
        canonical["max_tokens"] = 16  # the legacy API's default
    return canonical


def _text_choice(choice: Mapping[str, Any], text: str) -> dict[str, Any]:
    return {"text": text, "index": choice.get("index", 0), "logprobs": None,
            "finish_reason": choice.get("finish_reason")}  # fmt: skip


class CompletionsStreamEncoder:
    """Canonical chunks out as ``text_completion`` SSE chunks; usage only when asked for."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model, self._include_usage = model, include_usage
        self._usage_sent = False
        self._id = ""

    def _chunk(self, chunk: Mapping[str, Any], choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        out = {"id": self._id or chunk.get("id", ""), "object": "text_completion",
               "created": chunk.get("created", 0), "model": self._model, "choices": choices}  # fmt: skip
        if usage is not None:
            out["usage"] = usage
        return b"data: " + orjson.dumps(out) + b"\n\n"

    def encode(self, chunk: Chunk) -> bytes:
        self._id = self._id or "cmpl-" + str(chunk.get("id", "")).removeprefix("chatcmpl-")
        choices = chunk.get("choices") or []
        if not choices:
            usage = chunk.get("usage")
            if usage is None or not self._include_usage:
                return b""
            self._usage_sent = True
            return self._chunk(chunk, [], usage)
        out = []
        for choice in choices:
            text = (choice.get("delta") or {}).get("content") or ""
            if text or choice.get("finish_reason"):
                out.append(_text_choice(cast(Mapping[str, Any], choice), text))
        return self._chunk(chunk, out) if out else b""

    def finish(self, usage: Mapping[str, Any] | None) -> bytes:
        if self._include_usage and not self._usage_sent and usage:
            return self._chunk({}, [], dict(usage)) + b"data: [DONE]\n\n"
        return b"data: [DONE]\n\n"

    def error(self, message: str, error_type: str = "api_error") -> bytes:
        from turnout.errors import error_body

        return b"data: " + orjson.dumps(error_body(message, error_type, None, "stream_error")) + b"\n\n"


class CompletionsDialect(OpenAIDialect):
    """OpenAI's errors; answers as ``text_completion`` objects."""

    name = "openai"

    def answer(
        self, completion: WholeAnswer, model: ModelEntry, cost: float | None, message_id: str
    ) -> bytes:
        chat = cast(Completion, completion)
        choices = []
        for choice in chat.get("choices") or []:
            content = (choice.get("message") or {}).get("content")
            choices.append(
                _text_choice(cast(Mapping[str, Any], choice), content if isinstance(content, str) else "")
            )
        out = {"id": "cmpl-" + str(chat.get("id", "")).removeprefix("chatcmpl-"), "object": "text_completion",
               "created": chat.get("created", 0), "model": model.public_name, "choices": choices,
               "usage": chat.get("usage")}  # fmt: skip
        return orjson.dumps(out)

    def stream_encoder(self, model: str, include_usage: bool) -> CompletionsStreamEncoder:
        return CompletionsStreamEncoder(model, include_usage)


COMPLETIONS = CompletionsDialect()
