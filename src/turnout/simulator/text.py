"""Deterministic reply text, token counts, tool arguments and embedding vectors.

A reply is a tuple of *pieces*, each about one token: words (every word after the first with its
leading space) for prose, 4-character slices for JSON. Streams send one piece per chunk;
``completion_tokens`` is the number of pieces.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import struct
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import orjson

LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris"
).split()
ECHO_WORDS = 8  # how many words of the prompt the reply repeats
JSON_PIECE = 4  # characters per token in JSON answers
_WORD = re.compile(r"\s*\S+")


def content_text(content: Any) -> str:
    """The text of an OpenAI/Anthropic/Ollama message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            text = part.get("text")
            if isinstance(text, str):
                parts.append(text)
            elif "content" in part:  # Anthropic tool_result
                parts.append(content_text(part["content"]))
    return " ".join(parts)


def count_prompt_tokens(texts: Iterable[str]) -> int:
    """About one token per four characters, at least 1."""
    return max(1, (sum(len(t) for t in texts) + 3) // 4)


def messages_texts(messages: list[Any]) -> list[str]:
    """The text of every message (and of the arguments of the tool calls they carry)."""
    out: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        out.append(content_text(message.get("content")))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                args = function.get("arguments")
                out.append(args if isinstance(args, str) else orjson.dumps(args).decode())
    return out


def last_user_text(messages: list[Any]) -> str:
    """The text of the last ``user`` message, or ``""``."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def echo_words(prompt: str) -> tuple[str, ...]:
    """The first words of ``prompt`` (cheap on long prompts)."""
    return tuple(prompt.split(None, ECHO_WORDS)[:ECHO_WORDS])


@lru_cache(maxsize=4096)
def _text_pieces(echo: tuple[str, ...], tokens: int, fixed: str | None) -> tuple[str, ...]:
    if fixed is not None:  # keep its exact whitespace: pieces join back to ``fixed``
        pieces = _WORD.findall(fixed) or [""]
        pieces[-1] += fixed[len("".join(pieces)) :]
        return tuple(pieces)
    words = ["Echo:", *echo][: max(1, tokens)]
    filler = LOREM * (tokens // len(LOREM) + 1)
    words.extend(filler[: max(0, tokens - len(words))])
    return tuple(w if i == 0 else " " + w for i, w in enumerate(words))


def text_pieces(prompt: str, tokens: int, fixed: str | None = None) -> tuple[str, ...]:
    """The prose reply to ``prompt`` as pieces: ``"Echo: <first words>"`` + lorem, or ``fixed``."""
    return _text_pieces(echo_words(prompt), tokens, fixed)


def split_pieces(text: str, size: int = JSON_PIECE) -> tuple[str, ...]:
    """``text`` in ``size``-character pieces (at least one)."""
    return tuple(text[i : i + size] for i in range(0, len(text), size)) or ("",)


def json_reply(prompt: str, tokens: int, fixed: str | None, schema: Any = None) -> str:
    """A JSON answer: a value sampled from ``schema`` when given, else ``{"reply": <prose>}``."""
    if isinstance(schema, dict) and schema:
        return orjson.dumps(sample_schema(schema, " ".join(echo_words(prompt)) or "sim")).decode()
    return orjson.dumps({"reply": "".join(text_pieces(prompt, tokens, fixed))}).decode()


def sample_schema(schema: Any, text: str = "sim", depth: int = 0) -> Any:
    """A small value valid for a (simple) JSON schema; strings are ``text``."""
    if not isinstance(schema, dict) or depth > 6:
        return text
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return sample_schema(options[0], text, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {name: sample_schema(sub, text, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [sample_schema(schema.get("items"), text, depth + 1)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), text)


def tool_arguments(parameters: Any, prompt: str) -> dict[str, Any]:
    """Arguments for a call of a tool with JSON-schema ``parameters``: always a JSON object."""
    text = " ".join(echo_words(prompt)[:4]) or "sim"
    value = sample_schema(parameters, text) if isinstance(parameters, dict) else None
    if isinstance(value, dict) and value:
        return value
    return {"query": text}


@lru_cache(maxsize=8192)
def _vector(text: str, dimensions: int) -> tuple[tuple[float, ...], str]:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    raw = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(x / norm for x in raw))
    return struct.unpack(f"<{dimensions}f", packed), base64.b64encode(packed).decode()


def embedding(text: str, dimensions: int) -> tuple[float, ...]:
    """A unit vector that depends only on ``text`` (float32 values)."""
    return _vector(text, dimensions)[0]


def embedding_base64(text: str, dimensions: int) -> str:
    """The same vector as little-endian float32 bytes in base64 (OpenAI's ``encoding_format``)."""
    return _vector(text, dimensions)[1]


def embedding_inputs(value: Any) -> list[str] | None:
    """OpenAI/Ollama ``input``: a string, a list of strings, or token arrays; ``None`` if invalid."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, int) for v in value):
        return [" ".join(map(str, value))]
    out: list[str] = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list) and all(isinstance(v, int) for v in item):
            out.append(" ".join(map(str, item)))
        else:
            return None
    return out
