"""The embedded secret store: AES-256-GCM envelope encryption in the ``local_secrets`` table.

Every secret gets a fresh random 32-byte data key that encrypts the value; the data key is
itself encrypted ("wrapped") by the master key. Both layers use the ref as associated data,
so a row copied to another ref no longer decrypts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.redaction import KNOWN_SECRETS
from turnout.secrets.base import (
    SecretNotFound,
    SecretStoreUnavailable,
    decode_fields,
    encode_fields,
    remember,
)
from turnout.store.models import StoredSecret

KEY_BYTES = 32
NONCE_BYTES = 12
REF_PREFIX = "secret/llm"
# asyncpg can surface connection failures as plain OSError (refused, timeout) rather than wrapped.
_DB_ERRORS = (SQLAlchemyError, OSError)


def _db_error(action: str, exc: Exception) -> SecretStoreUnavailable:
    # Only the exception class: SQLAlchemy messages can echo bound parameters (ciphertext).
    return SecretStoreUnavailable(f"local secret store: database error while {action} ({type(exc).__name__})")


class LocalSecretStore:
    """Secrets encrypted at rest in Turnout's own database under a 32-byte master key."""

    backend = "local"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], master_key: bytes) -> None:
        if not isinstance(master_key, bytes | bytearray) or len(master_key) != KEY_BYTES:
            raise ValueError(f"master key must be exactly {KEY_BYTES} bytes")
        self._sessionmaker = sessionmaker
        self._master = AESGCM(bytes(master_key))

    def __repr__(self) -> str:
        return "LocalSecretStore(backend='local')"

    def ref_for(self, provider_id: str) -> str:
        """``secret/llm/{provider_id}``, the same shape the vault backend uses by default."""
        if not provider_id or "/" in provider_id:
            raise ValueError("provider id must be non-empty and contain no '/'")
        return f"{REF_PREFIX}/{provider_id}"

    def _seal(self, ref: str, value: str) -> tuple[bytes, bytes, bytes, bytes]:
        """Encrypt ``value`` for ``ref``: (wrapped_key, key_nonce, nonce, ciphertext)."""
        aad = ref.encode()
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, value.encode(), aad)
        key_nonce = os.urandom(NONCE_BYTES)
        wrapped_key = self._master.encrypt(key_nonce, data_key, aad)
        return wrapped_key, key_nonce, nonce, ciphertext

    def _open(self, row: StoredSecret) -> str:
        """Decrypt a row; any failure is reported without key material."""
        aad = row.ref.encode()
        try:
            data_key = self._master.decrypt(bytes(row.key_nonce), bytes(row.wrapped_key), aad)
        except (InvalidTag, ValueError):
            raise SecretStoreUnavailable(
                f"local secret store: cannot decrypt {row.ref}: wrong master key or tampered data"
            ) from None
        try:
            plaintext = AESGCM(data_key).decrypt(bytes(row.nonce), bytes(row.ciphertext), aad)
            return plaintext.decode()
        except (InvalidTag, ValueError):
            raise SecretStoreUnavailable(
                f"local secret store: cannot decrypt {row.ref}: tampered ciphertext"
            ) from None

    async def put(self, ref: str, value: str) -> None:
        """Create or replace the secret at ``ref`` with a fresh data key."""
        KNOWN_SECRETS.add(value)
        await self._write(ref, value)

    async def put_fields(self, ref: str, fields: Mapping[str, str]) -> None:
        """Store a credential: its fields as a JSON object, encrypted like any value."""
        remember(fields)
        await self._write(ref, encode_fields(fields))

    async def _write(self, ref: str, value: str) -> None:
        for attempt in range(2):
            wrapped_key, key_nonce, nonce, ciphertext = self._seal(ref, value)
            try:
                async with self._sessionmaker() as session:
                    row = await session.get(StoredSecret, ref)
                    if row is None:
                        row = StoredSecret(ref=ref)
                        session.add(row)
                    row.wrapped_key = wrapped_key
                    row.key_nonce = key_nonce
                    row.nonce = nonce
                    row.ciphertext = ciphertext
                    await session.commit()
                return
            except IntegrityError as exc:
                # A concurrent put created the row between our get and insert: update it instead.
                if attempt == 0:
                    continue
                raise _db_error("storing a secret", exc) from None
            except _DB_ERRORS as exc:
                raise _db_error("storing a secret", exc) from None

    async def get(self, ref: str) -> str:
        """Decrypt and return the secret at ``ref``."""
        value = await self._read(ref)
        KNOWN_SECRETS.add(value)  # from here on redacted from answers, records and logs
        return value

    async def get_fields(self, ref: str) -> dict[str, str]:
        """The credential at ``ref`` (a plain-string secret reads as ``{"api_key": value}``)."""
        fields = decode_fields(await self._read(ref))
        remember(fields)  # from here on redacted from answers, records and logs
        return fields

    async def _read(self, ref: str) -> str:
        try:
            async with self._sessionmaker() as session:
                row = await session.get(StoredSecret, ref)
        except _DB_ERRORS as exc:
            raise _db_error("reading a secret", exc) from None
        if row is None:
            raise SecretNotFound(f"no secret at {ref}")
        return self._open(row)

    async def delete(self, ref: str) -> None:
        """Remove the secret at ``ref``; absent is fine."""
        try:
            async with self._sessionmaker() as session:
                row = await session.get(StoredSecret, ref)
                if row is not None:
                    await session.delete(row)
                    await session.commit()
        except _DB_ERRORS as exc:
            raise _db_error("deleting a secret", exc) from None

    async def check(self) -> None:
        """Verify the database answers and the secrets table exists."""
        try:
            async with self._sessionmaker() as session:
                await session.execute(select(StoredSecret.ref).limit(1))
        except _DB_ERRORS as exc:
            raise _db_error("checking the database", exc) from None

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""
