"""Agent API keys: ``tk-<id>.<secret>``; only a salted SHA-256 of the secret is stored.

Keys carry 256 bits of randomness, so a fast salted hash is the right tool (a slow KDF
protects low-entropy passwords and would cost milliseconds on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "tk-"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly issued key: ``value`` is shown once and never stored."""

    key_id: str
    value: str
    salt: str
    secret_hash: str
    hint: str


def hash_secret(salt: str, secret: str) -> str:
    """The stored digest of a key's secret part."""
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def issue_key() -> NewKey:
    """Generate a key id, a secret and its salted hash."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    value = f"{KEY_PREFIX}{key_id}.{secret}"
    return NewKey(key_id, value, salt, hash_secret(salt, secret), hint="…" + value[-4:])


def split_key(value: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    if not value.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = value[len(KEY_PREFIX) :].partition(".")
    if not sep or not key_id or not secret or len(value) > 200:
        return None
    return key_id, secret


def secret_matches(salt: str, expected_hash: str, secret: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(salt, secret), expected_hash)
