"""What the simulated Anthropic API does with extended thinking and prompt caching, as the real one
does, so that a gateway that changes either on the way is caught:

- ``thinking`` (``enabled`` with ``budget_tokens`` >= 1024 and < ``max_tokens``, or ``adaptive``)
  answers with a ``thinking`` block before the text, signed (an HMAC of its text); the prompt
  carrying Anthropic's magic string gets a ``redacted_thinking`` block instead (its ``data`` signed
  too). A later turn that replays such a block with a changed text, signature or data is refused
  with a 400, as Anthropic refuses it. With thinking, ``temperature`` may only be 1.
- ``cache_control`` (at most 4 breakpoints, ``ttl`` ``5m`` or ``1h``): the prompt up to the last
  breakpoint seen before is read from the cache (``cache_read_input_tokens``), what follows it up
  to the last breakpoint is written (``cache_creation_input_tokens``, split in ``cache_creation`` by
  the ttl of the breakpoint that ends each piece); ``input_tokens`` counts the rest. Prefixes are
  kept per simulator and model.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from turnout.simulator import text

REDACTED_TRIGGER = (  # Anthropic's documented string that makes a model's thinking come back redacted
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_"
    "46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB"
)
MIN_BUDGET = 1024
MAX_BREAKPOINTS = 4
TTLS = ("5m", "1h")
_KEY = b"turnout-simulator/anthropic/thinking"


class Refused(Exception):
    """A request Anthropic would refuse: a 400 ``invalid_request_error`` with this message."""


def signature(thinking: str) -> str:
    """The signature of a thinking text: deterministic, so a replay can be checked."""
    return base64.b64encode(hmac.new(_KEY, thinking.encode(), hashlib.sha256).digest()).decode()


def redacted_data(thinking: str) -> str:
    """An opaque ``redacted_thinking`` payload: the (encoded) text followed by its signature."""
    return base64.b64encode(thinking.encode() + b"\x00" + signature(thinking).encode()).decode()


def _redacted_ok(data: Any) -> bool:
    try:
        raw = base64.b64decode(data.encode(), validate=True) if isinstance(data, str) else b""
    except ValueError:
        return False
    thought, _, sign = raw.rpartition(b"\x00")
    return bool(sign) and hmac.compare_digest(sign, signature(thought.decode("utf-8", "replace")).encode())


def thinking_wanted(body: dict[str, Any]) -> bool:
    """Check ``thinking`` and what goes with it; whether the answer thinks."""
    config = body.get("thinking")
    if config is None:
        return False
    if not isinstance(config, dict) or config.get("type") not in ("enabled", "disabled", "adaptive"):
        raise Refused(
            "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
        )
    if config["type"] == "disabled":
        return False
    if config["type"] == "enabled":
        budget = config.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < MIN_BUDGET:
            raise Refused(
                f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_BUDGET}"
            )
        if body["max_tokens"] <= budget:
            raise Refused("`max_tokens` must be greater than `thinking.budget_tokens`.")
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise Refused("`temperature` may only be set to 1 when thinking is enabled.")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise Refused("Thinking may not be enabled when tool_choice forces tool use.")
    return True


def check_replayed_thinking(messages: list[Any]) -> None:
    """Every thinking block replayed in an assistant turn must be one this API signed, unchanged."""
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or message.get("role") != "assistant":
            continue
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "thinking":
                thought, sign = block.get("thinking"), block.get("signature")
                if not isinstance(thought, str) or not isinstance(sign, str):
                    raise Refused(f"messages.{i}.content.{j}.thinking: Field required")
                if not hmac.compare_digest(sign.encode(), signature(thought).encode()):
                    raise Refused(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
            elif kind == "redacted_thinking" and not _redacted_ok(block.get("data")):
                raise Refused(f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block")


def thought_about(prompt: str) -> str:
    """The deterministic thinking text for a prompt."""
    words = " ".join(text.echo_words(prompt)) or "the question"
    return f"The user asks: {words}. Let me reason it through step by step before answering."


@dataclass(slots=True)
class _Segment:
    """One cacheable piece of a prompt, in cache order (tools, system, messages)."""

    key: Any  # what the cache compares (the block without its cache_control)
    chars: int
    ttl: str | None  # set where the block is a cache breakpoint


def _ttl(control: Any) -> str:
    ttl = control.get("ttl", "5m") if isinstance(control, dict) else None
    if not isinstance(control, dict) or control.get("type") != "ephemeral" or ttl not in TTLS:
        raise Refused("cache_control: Input should be {type: 'ephemeral', ttl: '5m' | '1h'}")
    return str(ttl)


def _segment(block: Any, chars: int) -> _Segment:
    if not isinstance(block, dict) or "cache_control" not in block:
        return _Segment(block, chars, None)
    plain = {k: v for k, v in block.items() if k != "cache_control"}
    return _Segment(plain, chars, _ttl(block["cache_control"]))


def segments(body: dict[str, Any]) -> list[_Segment]:
    """The prompt as cacheable pieces: each tool, each system block, each message's blocks."""
    out: list[_Segment] = []
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            plain = {k: v for k, v in tool.items() if k != "cache_control"}
            out.append(_segment(tool, len(orjson.dumps(plain))))
    system = body.get("system")
    if isinstance(system, str):
        out.append(_Segment(system, len(system), None))
    elif isinstance(system, list):
        out.extend(_segment(block, len(text.content_text([block]))) for block in system)
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append(_Segment((message.get("role"), content), len(content), None))
        elif isinstance(content, list):
            out.extend(_segment(block, len(text.content_text([block]))) for block in content)
    control = body.get("cache_control")  # automatic caching: a breakpoint on the last block
    if control is not None and out:
        out[-1].ttl = _ttl(control)
    return out


def prompt_tokens(parts: list[_Segment]) -> int:
    """The prompt's tokens: about one per four characters, at least 1."""
    return max(1, _tokens(parts))


class PromptCache:
    """The prefixes this simulator has cached (for ever: no ttl is enforced)."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def usage(self, model: str, parts: list[_Segment]) -> dict[str, Any] | None:
        """The cache fields of ``usage`` (``input_tokens`` the uncached rest), None without breakpoints."""
        points = [i for i, part in enumerate(parts) if part.ttl is not None]
        if not points:
            return None
        if len(points) > MAX_BREAKPOINTS:
            found = len(points)
            raise Refused(
                f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
            )
        keys = [self._key(model, parts[: i + 1]) for i in points]
        hit = next((n for n in range(len(points) - 1, -1, -1) if keys[n] in self._seen), -1)
        self._seen.update(keys)
        read = 0 if hit < 0 else _tokens(parts[: points[hit] + 1])
        by_ttl = dict.fromkeys(TTLS, 0)  # each breakpoint writes what lies after the one before it
        done = read
        for i in points[hit + 1 :]:
            upto = _tokens(parts[: i + 1])
            by_ttl[str(parts[i].ttl)] += upto - done
            done = upto
        written = done - read
        total = max(_tokens(parts), done)
        return {
            "input_tokens": total - done,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {f"ephemeral_{ttl}_input_tokens": n for ttl, n in by_ttl.items()},
        }

    @staticmethod
    def _key(model: str, parts: list[_Segment]) -> bytes:
        return hashlib.sha256(
            orjson.dumps([model, [p.key for p in parts]], option=orjson.OPT_SORT_KEYS)
        ).digest()


def _tokens(parts: list[_Segment]) -> int:
    return (sum(p.chars for p in parts) + 3) // 4
