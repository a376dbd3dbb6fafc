"""Redaction of secrets from text that leaves the process: answers, records and log lines.

Two nets. The first catches the credentials this process has actually read (provider keys from the
secret store), by exact match on every form an upstream may echo them in: as sent, without a vendor
prefix (``sk-ant-api03-…`` echoed from its tail), URL- or JSON-escaped, base64, in any letter case
(an Azure key is 32 hex digits that a server may upper-case). A pattern cannot know those: an
unprefixed key of a custom server looks like any other word. The second net catches anything
*shaped* like a key or token that the process never read: ``sk-…``, ``Bearer …``, JWTs, Vault
tokens and Turnout's own ``tk-`` agent keys.

``KNOWN_SECRETS`` is process-wide on purpose: log lines are rendered by a process-wide logging
pipeline, so the set of secrets they must never contain is process-wide too.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 4  # a configured key shorter than this is not redacted (it would eat words)
MIN_FORM_CHARS = 12  # derived forms (tails, encodings) shorter than this are too generic to match
_TAIL_SEPARATORS = "-_.:"
#: credential fields that configure rather than authenticate (a Bedrock credential's ``region``):
#: redacting their values would scrub every "us-east-1" from the process's logs and errors
PUBLIC_CREDENTIAL_FIELDS = frozenset({"region"})

_SECRET_PATTERNS = (
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),
    re.compile(r"\b(?:hvs|s)\.[A-Za-z0-9]{20,}"),
    re.compile(r"\btk-[0-9a-fA-F]{6,}\.[A-Za-z0-9_-]{8,}"),  # Turnout's agent keys
)


def secret_forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` an upstream might echo: raw, unprefixed tails, escaped, base64."""
    if len(secret) < MIN_SECRET_CHARS:
        return set()
    bases = {secret}
    for index, char in enumerate(secret):  # "sk-ant-api03-XYZ" -> "ant-api03-XYZ", "api03-XYZ", "XYZ"
        if char in _TAIL_SEPARATORS and len(secret) - index - 1 >= MIN_FORM_CHARS:
            bases.add(secret[index + 1 :])
    forms = set(bases)
    for base in bases:
        raw = base.encode()
        forms.add(quote(base, safe=""))
        forms.add(base.replace("\\", "\\\\").replace('"', '\\"').replace("/", "\\/"))
        for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            forms.update((encoded, encoded.rstrip("=")))  # padded, and as a fragment of a longer run
    return {form for form in forms if form == secret or len(form) >= MIN_FORM_CHARS}


def _compile(forms: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(forms), key=len, reverse=True)  # the longest spelling wins an overlap
    if not ordered:
        return None
    return re.compile("|".join(re.escape(form) for form in ordered), re.IGNORECASE)


class SecretSet:
    """Secrets to redact by exact match; the matcher is rebuilt only when the set changes."""

    def __init__(self) -> None:
        self._forms: dict[str, frozenset[str]] = {}
        self._matcher: re.Pattern[str] | None = None
        self._stale = False

    def add(self, secret: str | None) -> None:
        """Remember ``secret`` (a no-op for None, short or known values)."""
        if secret and len(secret) >= MIN_SECRET_CHARS and secret not in self._forms:
            self._forms[secret] = frozenset(secret_forms(secret))
            self._stale = True

    def discard(self, secret: str) -> None:
        if self._forms.pop(secret, None) is not None:
            self._stale = True

    def __contains__(self, secret: object) -> bool:
        return secret in self._forms

    def scrub(self, text: str) -> str:
        """``text`` with every form of every remembered secret replaced."""
        if self._stale:
            self._matcher = _compile(form for forms in self._forms.values() for form in forms)
            self._stale = False
        return text if self._matcher is None else self._matcher.sub(REDACTED, text)


KNOWN_SECRETS = SecretSet()


def redact_text(text: str, *secrets: str | None) -> str:
    """``text`` without ``secrets`` (every form), any secret this process has read, or key-shaped
    strings. Call it on anything an upstream said before it reaches a client, a record or a log."""
    if not text:
        return text
    extra = [secret for secret in secrets if secret and secret not in KNOWN_SECRETS]
    if extra:
        matcher = _compile(form for secret in extra for form in secret_forms(secret))
        if matcher is not None:
            text = matcher.sub(REDACTED, text)
    text = KNOWN_SECRETS.scrub(text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def url_for_logs(url: str) -> str:
    """``url`` (or a comma-separated list, as NATS takes) with the secret of its userinfo masked:
    ``nats://user:***@host`` for a password, ``nats://***@host`` for a token alone."""
    return ",".join(_masked(part) for part in url.split(","))


def _masked(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    masked = f"{user}:***" if colon else "***"
    return f"{scheme}://{masked}@{host}{slash}{path}"
