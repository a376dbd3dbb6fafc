"""What the gateway answers with: domain results that ``api/`` renders in the caller's dialect.

Each result carries the message id (every answered call has a record) and, where the record's
journal write is still under way, the ``durable`` awaitable to await before the answer's last byte.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from turnout.domain.snapshot import ModelEntry
from turnout.errors import TurnoutError
from turnout.translate.types import Chunk, WholeAnswer


@dataclass(slots=True)
class Answer:
    """A whole answer: the canonical completion (or embeddings list)."""

    body: WholeAnswer
    model: ModelEntry
    message_id: str
    cost_usd: float | None
    durable: Awaitable[None] | None  # await before sending the answer's last byte
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # x-ratelimit-*
    raw: bytes | None = None  # a passed-through answer's bytes, sent as they are (``body`` is for the record)


@dataclass(slots=True)
class Failed:
    """A call that ended in an error the caller is told about."""

    error: TurnoutError
    message_id: str
    durable: Awaitable[None] | None


class StreamBroken(Exception):
    """The upstream stream broke after its first byte; its record is already journaled."""

    def __init__(self, message: str, error_type: str = "api_error") -> None:
        super().__init__(message)
        self.message, self.error_type = message, error_type


@dataclass(slots=True)
class Streamed:
    """A stream: ``batches`` yields the canonical chunks of each upstream read (one write each); its
    last batch comes once the record is journaled, with ``finished`` set and ``usage`` holding the
    reported or estimated usage. It raises ``StreamBroken`` after recording a broken stream.
    Closing ``batches`` early (the client left) records a cancelled call.

    A passed-through stream (the client's body went to a provider of its own format) has
    ``passthrough`` instead: the bytes to send, as they arrive, ending (after its record) with the
    last ones or the format's error event; ``batches`` is then not set."""

    model: ModelEntry
    message_id: str
    usage: Mapping[str, Any] | None = None
    finished: bool = False  # set before the last batch, which comes once the record is journaled
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # x-ratelimit-*
    batches: AsyncGenerator[list[Chunk], None] = field(init=False)  # attached by the gateway
    passthrough: AsyncGenerator[bytes, None] | None = None


@dataclass(slots=True)
class TokenCount:
    """A prompt's token count for ``model`` (``count_tokens``): the provider's answer (``raw``, sent
    as it is) or Turnout's estimate (``estimated``)."""

    input_tokens: int
    model: ModelEntry
    estimated: bool
    raw: bytes | None = None
