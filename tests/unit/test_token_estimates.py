"""What a request is estimated to cost in tokens before it is sent: the spend guard reserves a
call's worst case from it, so what is not text is counted at its worst, never as nothing."""

from __future__ import annotations

import base64
import zlib

from turnout.tokens import (
    IMAGE_TOKENS,
    LOW_DETAIL_IMAGE_TOKENS,
    PDF_BYTES_PER_PAGE,
    PDF_PAGE_TOKENS,
    document_tokens,
    estimate_prompt_tokens,
)


def test_a_pdf_whose_page_objects_are_compressed_is_counted_by_its_size() -> None:
    """PDF 1.5 object streams hide ``/Type /Page`` inside compressed bytes: a count of none would
    reserve such a report as one page whatever its length."""
    pages = zlib.compress(b"".join(b"<< /Type /Page >>" for _ in range(30)))
    pdf = b"%PDF-1.7\n" + pages + bytes(range(256)) * (3 * PDF_BYTES_PER_PAGE // 256) + b"%%EOF"
    assert b"/Type /Page" not in pdf
    encoded = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    assert document_tokens(encoded) >= 3 * PDF_PAGE_TOKENS


def test_images_audio_tool_calls_and_files_all_count() -> None:
    audio = base64.b64encode(bytes(16_000)).decode()  # a second of 128 kbit/s audio
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/b.png", "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": audio, "format": "mp3"}},
                    {"type": "file", "file": {"file_id": "file-abc"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f" * 4, "arguments": "x" * 396}}
                ],
            },
        ]
    }
    expected = IMAGE_TOKENS + LOW_DETAIL_IMAGE_TOKENS + 32 + PDF_PAGE_TOKENS + 100
    assert estimate_prompt_tokens(body) == expected
