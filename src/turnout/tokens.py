"""Token counts estimated from a request, for when no tokenizer's count is at hand.

Text is one token per ``CHARS_PER_TOKEN`` characters: OpenAI's rule of thumb for English (code and
other languages run nearer 3). What is not text is counted at its worst case, because the spend
guard reserves a call's worst-case cost from this estimate (an estimate short of the bill lets
concurrent calls overspend a budget by more than one reservation): an image at the most any
provider bills one, a PDF at a full page's text and picture per page, audio at Gemini's 32 tokens a
second of 128 kbit/s MP3, tool definitions and tool-call arguments as their JSON text. Routing
prices a request with the same estimate; the gateway uses it for an answer whose provider reported
no usage (llama.cpp's streams), and marks such records estimated. No tokenizer is downloaded at run
time: the gateway must work air-gapped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import orjson

CHARS_PER_TOKEN = 4
# An image as its provider bills it at most: Anthropic's ~w*h/750 after its downscale to ~1.15
# megapixels (~1,600), above OpenAI's high-detail tiles for gpt-4o (<= 1,445) and Gemini's 258.
IMAGE_TOKENS = 1_600
LOW_DETAIL_IMAGE_TOKENS = 85  # OpenAI's ``detail: low``: one fixed tile
# A PDF page billed as its text and a picture of it: Anthropic's 1,500-3,000 text tokens a page
# (measured ~2,350-2,480 on text and table pages) with the picture inside that range's top.
PDF_PAGE_TOKENS = 3_000
PDF_BYTES_PER_PAGE = 50_000  # pages of a PDF whose page objects are compressed: 50 KB a page
AUDIO_BYTES_PER_TOKEN = 500  # Gemini's 32 tokens a second of 128 kbit/s (16 KB/s) audio
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def estimate_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters of text (rounded up: a non-empty text is at least one)."""
    return -(-chars // CHARS_PER_TOKEN)


def message_tokens(messages: Any) -> int:
    """Tokens of OpenAI-shaped messages: their text, tool calls' names and arguments, and each
    image, audio clip and file at its worst case."""
    chars = tokens = 0
    for message in messages or ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    text = part.get("text")
                    if isinstance(text, str):
                        chars += len(text)
                    else:
                        tokens += part_tokens(part)
        calls = message.get("tool_calls")
        if calls:
            chars += _tool_call_chars(calls)
    return estimate_tokens(chars) + tokens


def part_tokens(part: Mapping[str, Any]) -> int:
    """Tokens of a content part that is not text: an image, an audio clip or a file (0 for others)."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        low = isinstance(image, dict) and image.get("detail") == "low"
        return LOW_DETAIL_IMAGE_TOKENS if low else IMAGE_TOKENS
    if kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        return -(-_decoded_size(_payload(data)) // AUDIO_BYTES_PER_TOKEN) if isinstance(data, str) else 0
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        return document_tokens(data) if isinstance(data, str) else PDF_PAGE_TOKENS  # by id: a page
    return 0


def document_tokens(data: str) -> int:
    """Tokens of a base64 PDF (bare or a ``data:`` URL): ``PDF_PAGE_TOKENS`` a page, its pages
    counted by their page objects or, where those are compressed, by its size."""
    payload = _payload(data)
    try:
        pdf = base64.b64decode(payload)
    except (binascii.Error, ValueError):
        pdf = b""
    pages = len(_PDF_PAGE.findall(pdf)) or max(1, -(-_decoded_size(payload) // PDF_BYTES_PER_PAGE))
    return pages * PDF_PAGE_TOKENS


def _payload(data: str) -> str:
    """The base64 of a ``data:`` URL, or ``data`` itself."""
    return data.partition(",")[2] if data.startswith("data:") else data


def _decoded_size(payload: str) -> int:
    """Bytes of a base64 payload, from its length."""
    return len(payload) * 3 // 4 - payload[-2:].count("=")


def _tool_call_chars(calls: Any) -> int:
    chars = 0
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    chars += len(function[key])
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
    """Tokens of a chat body's messages and tool definitions, or of an embeddings body's input."""
    if is_embeddings(body):
        return input_tokens(body["input"])
    tools = body.get("tools")
    return message_tokens(body.get("messages")) + (estimate_tokens(len(orjson.dumps(tools))) if tools else 0)


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
