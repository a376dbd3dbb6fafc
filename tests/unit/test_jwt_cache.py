"""Verified JWTs are cached until they expire; the cache never lets a bad token through."""

from __future__ import annotations

import time

import pytest

from turnout.auth.jwt_tokens import JwtCodec
from turnout.errors import Unauthenticated


def test_cached_token_still_expires() -> None:
    codec = JwtCodec("s" * 32)
    token = codec.mint("alice", "acme", ["user"], ttl_s=1)
    assert codec.verify(token).subject == "alice"
    assert codec.verify(token).tenant_id == "acme"  # served from the cache
    time.sleep(2.05)
    with pytest.raises(Unauthenticated) as raised:
        codec.verify(token)
    assert raised.value.code == "token_expired"


def test_tampered_token_rejected_after_the_genuine_one_is_cached() -> None:
    codec = JwtCodec("s" * 32)
    token = codec.mint("alice", "acme", ["user"])
    codec.verify(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(Unauthenticated):
        codec.verify(forged)
    other = JwtCodec("t" * 32)
    with pytest.raises(Unauthenticated):
        other.verify(token)  # another secret: the cache is per codec
