"""The simulator's deterministic text, token counts, tool arguments, vectors and settings."""

from __future__ import annotations

import base64
import math
import struct

import pytest

from turnout.simulator import SimulatorConfig, text


def test_reply_echoes_the_prompt_padded_to_n_tokens() -> None:
    pieces = text.text_pieces("why is the sky blue at noon and not at dusk today", 12)
    assert len(pieces) == 12
    assert "".join(pieces).startswith("Echo: why is the sky blue at noon and lorem")
    assert pieces[0] == "Echo:" and all(p.startswith(" ") for p in pieces[1:])
    assert text.text_pieces("why is the sky blue at noon and not", 12) == pieces  # first words only
    assert "".join(text.text_pieces("", 3)) == "Echo: lorem ipsum"
    assert len(text.text_pieces("a b c", 1)) == 1


def test_fixed_reply_keeps_its_whitespace() -> None:
    fixed = "  Hello,\n  world!  "
    pieces = text.text_pieces("ignored", 99, fixed)
    assert "".join(pieces) == fixed and len(pieces) == 2
    assert text.text_pieces("x", 5, "") == ("",)


def test_prompt_tokens_and_message_texts() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "efgh"}, {"type": "image_url", "image_url": {}}],
        },
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}]},
        {"role": "user", "content": [{"type": "tool_result", "content": [{"type": "text", "text": "ok"}]}]},
    ]
    texts = text.messages_texts(messages)
    assert texts == ["abcd", "efgh", "", '{"a":1}', "ok"]
    assert text.count_prompt_tokens(texts) == 5  # 17 characters
    assert text.count_prompt_tokens([]) == 1
    assert text.last_user_text(messages) == "ok"


def test_schema_samples_and_tool_arguments() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"enum": ["c", "f"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "maybe": {"type": ["null", "number"]},
            "pick": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
        },
    }
    assert text.sample_schema(schema, "t") == {
        "city": "t",
        "days": 1,
        "unit": "c",
        "tags": ["t"],
        "maybe": 1.5,
        "pick": True,
    }
    assert (
        text.tool_arguments(schema, "Weather in Rome tomorrow please")["city"] == "Weather in Rome tomorrow"
    )
    assert text.tool_arguments({"type": "object", "properties": {}}, "") == {"query": "sim"}
    assert text.tool_arguments(None, "find cats") == {"query": "find cats"}


def test_embeddings_are_deterministic_unit_vectors() -> None:
    first = text.embedding("alpha", 16)
    assert first == text.embedding("alpha", 16) != text.embedding("beta", 16)
    assert len(first) == 16 and math.isclose(sum(x * x for x in first), 1.0, rel_tol=1e-5)
    decoded = struct.unpack("<16f", base64.b64decode(text.embedding_base64("alpha", 16)))
    assert decoded == first
    assert text.embedding_inputs("a") == ["a"]
    assert text.embedding_inputs(["a", "b"]) == ["a", "b"]
    assert text.embedding_inputs([1, 2]) == ["1 2"]
    assert text.embedding_inputs([[1], [2, 3]]) == ["1", "2 3"]
    assert text.embedding_inputs([]) is None and text.embedding_inputs([{"x": 1}]) is None


def test_config_updates_are_validated() -> None:
    config = SimulatorConfig(api_key="k")
    config.update({"latency_ms": 5, "models": ["a"], "strict_models": True})
    assert config.latency_ms == 5.0 and isinstance(config.latency_ms, float)
    assert config.model_list(("x",)) == ("a",) and config.public()["api_key"] == "set"
    for bad in ({"latency_ms": -1}, {"reply_tokens": 0}, {"models": "a"}, {"strict_models": 1}, {"nope": 1}):
        with pytest.raises(ValueError):
            config.update(bad)
    assert config.latency_ms == 5.0
