"""Token counts estimated from text, for when no tokenizer's count is at hand.

One token per ``CHARS_PER_TOKEN`` characters: OpenAI's rule of thumb for English text (code and other
languages run nearer 3). Routing uses it to price a request before it is sent; the gateway uses it for
an answer whose provider reported no usage (llama.cpp's streams), and marks such records estimated.
No tokenizer is downloaded at run time: the gateway must work air-gapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters of text (rounded up: a non-empty text is at least one)."""
    return -(-chars // CHARS_PER_TOKEN)


def message_chars(messages: Any) -> int:
    """Characters of text in OpenAI-shaped messages (string contents and text parts)."""
    chars = 0
    for message in messages or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return chars


def input_tokens(value: Any) -> int:
    """Tokens of an embeddings body's ``input``: a text, texts, or token ids (a list of them, or
    lists of them), counted as they are."""
    if isinstance(value, str):
        return estimate_tokens(len(value))
    if not isinstance(value, list):
        return 0
    if all(isinstance(item, int) for item in value):
        return len(value)
    return sum(input_tokens(item) for item in value)


def is_embeddings(body: Mapping[str, Any]) -> bool:
    """Whether a canonical body is an embeddings call's (an input, no messages): every chat body
    has messages, the Responses API's and legacy completions' included."""
    return "messages" not in body and "input" in body


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Tokens of the text of every message of a chat body, or of an embeddings body's input."""
    if is_embeddings(body):
        return input_tokens(body["input"])
    return estimate_tokens(message_chars(body.get("messages")))


def estimated_usage(body: Mapping[str, Any], answer_chars: int) -> dict[str, int]:
    """An OpenAI ``usage`` object for a chat whose answer held ``answer_chars`` characters."""
    prompt, completion = estimate_prompt_tokens(body), estimate_tokens(answer_chars)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def answer_chars(choices: Any) -> int:
    """Characters of a whole answer's text and tool-call arguments."""
    chars = 0
    for choice in choices or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            chars += len(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                chars += len(function["arguments"])
    return chars
