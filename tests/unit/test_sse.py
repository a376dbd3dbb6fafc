"""The incremental SSE parser: any chunk boundary, any line ending, comments, multi-line data."""

from __future__ import annotations

import pytest

from turnout.translate.sse import SseEvent, SseParser, sse_frame

OPENROUTER_STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n'
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"content":" th\xc3\xa9re"}}]}\n\n'
    b"event: ping\ndata: multi\ndata: line\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SseEvent(None, '{"id":"gen-1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}'),
    SseEvent(None, '{"id":"gen-1","choices":[{"index":0,"delta":{"content":" th\u00e9re"}}]}'),
    SseEvent("ping", "multi\nline"),
    SseEvent(None, "[DONE]"),
]


def parse_in_pieces(stream: bytes, cuts: list[int]) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        events += parser.feed(stream[last:cut])
        last = cut
    return events + parser.flush()


def test_whole_stream() -> None:
    assert parse_in_pieces(OPENROUTER_STREAM, []) == EXPECTED


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_split_position_and_line_ending(ending: bytes) -> None:
    stream = OPENROUTER_STREAM.replace(b"\n", ending)
    for cut in range(len(stream) + 1):
        assert parse_in_pieces(stream, [cut]) == EXPECTED, (ending, cut)


def test_two_cuts_around_crlf_and_utf8() -> None:
    stream = OPENROUTER_STREAM.replace(b"\n", b"\r\n")
    for a in range(0, len(stream), 7):
        for b in range(a, min(len(stream), a + 12)):
            assert parse_in_pieces(stream, [a, b]) == EXPECTED


def test_byte_at_a_time() -> None:
    parser = SseParser()
    events: list[SseEvent] = []
    for i in range(len(OPENROUTER_STREAM)):
        events += parser.feed(OPENROUTER_STREAM[i : i + 1])
    assert events == EXPECTED and parser.flush() == []


def test_field_rules() -> None:
    stream = (
        b"\xef\xbb\xbfdata:no-space\n\n"  # BOM dropped; space after the colon optional
        b"id: 7\nretry: 100\nunknown: x\ndata:  two spaces\n\n"  # only one space is stripped
        b"data\n\n"  # a field name alone: empty data, still dispatched
        b"event: only-a-name\n\n"  # no data: not dispatched
        b":comment only\n\n"
        b"\n\n\n"
        b"data: a\n: comment between\ndata: b\n\n"
    )
    assert parse_in_pieces(stream, []) == [
        SseEvent(None, "no-space"),
        SseEvent(None, " two spaces"),
        SseEvent(None, ""),
        SseEvent(None, "a\nb"),
    ]
    assert parse_in_pieces(stream, [1]) == parse_in_pieces(stream, [])


def test_flush_is_lenient_about_a_missing_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b'data: {"x":1}\n\ndata: [DONE]') == [SseEvent(None, '{"x":1}')]
    assert parser.flush() == [SseEvent(None, "[DONE]")]
    assert parser.flush() == []


def test_empty_feed() -> None:
    assert SseParser().feed(b"") == []


def test_sse_frame_round_trips() -> None:
    assert sse_frame(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert sse_frame(b"x", event="message_start") == b"event: message_start\ndata: x\n\n"
    framed = sse_frame(b"one\ntwo\r\nthree", event="e")
    assert framed == b"event: e\ndata: one\ndata: two\ndata: three\n\n"
    assert SseParser().feed(framed) == [SseEvent("e", "one\ntwo\nthree")]
