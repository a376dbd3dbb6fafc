"""Decoding a passed-through legacy completion for the record, and renaming its model for the client."""

from __future__ import annotations

import pytest

from turnout.translate.completions_native import (
    COMPLETIONS,
    CompletionsStreamDecoder,
    native_completions_body,
)
from turnout.translate.errors import ProviderError


def test_a_stream_cut_before_done_raises_and_a_whole_one_reads() -> None:
    decoder = CompletionsStreamDecoder("cat/m")
    chunks = decoder.feed(
        b'data: {"id":"c","model":"m","choices":[{"text":"Hi","index":0,"finish_reason":null}]}\n\n'
    )
    assert chunks[0]["choices"][0]["delta"]["content"] == "Hi" and chunks[0]["model"] == "cat/m"
    with pytest.raises(ProviderError):
        decoder.finish()
    decoder.feed(b"data: [DONE]\n\n")
    assert decoder.finish() == []


def test_model_renamed_in_answers_and_stream_chunks() -> None:
    assert COMPLETIONS.answer(b'{"model":"up","choices":[]}', "cat/m") == b'{"model":"cat/m","choices":[]}'
    relay = COMPLETIONS.relay("cat/m")
    first = relay.feed(b'data: {"model":"up","choices":[]}\n')
    assert first == b""  # an event is passed on once complete
    assert relay.feed(b"\n") == b'data: {"model":"cat/m","choices":[]}\n\n'


def test_turnout_fields_never_go_upstream() -> None:
    raw = b'{"model":"m","prompt":"p"}'
    assert native_completions_body({"model": "m", "prompt": "p"}, raw).raw == raw
    native = native_completions_body({"model": "m", "prompt": "p", "fallbacks": ["x"]}, raw)
    assert native.raw is None and "fallbacks" not in native.body
