"""LocalSecretStore: AES-256-GCM envelope encryption in SQLite, plus the backend factory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.config import Settings
from turnout.redaction import redact_text
from turnout.secrets import (
    LocalSecretStore,
    SecretNotFound,
    SecretStore,
    SecretStoreConfigError,
    SecretStoreUnavailable,
    VaultSecretStore,
    build_secret_store,
)
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.models import Base, StoredSecret

SECRET = "sk-or-v1-" + "a1b2c3d4" * 6

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sm(tmp_path: Path) -> AsyncIterator[Sessionmaker]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def store(sm: Sessionmaker, master_key: bytes) -> LocalSecretStore:
    return LocalSecretStore(sm, master_key)


async def _row(sm: Sessionmaker, ref: str) -> StoredSecret:
    async with sm() as session:
        row = await session.get(StoredSecret, ref)
    assert row is not None
    return row


async def _patch_row(sm: Sessionmaker, ref: str, **values: bytes) -> None:
    async with sm() as session:
        row = await session.get(StoredSecret, ref)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        await session.commit()


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _assert_safe(message: str, master_key: bytes) -> None:
    assert master_key.hex() not in message
    assert repr(master_key) not in message
    assert SECRET not in message


async def test_round_trip(store: LocalSecretStore) -> None:
    assert isinstance(store, SecretStore)
    assert store.backend == "local"
    ref = store.ref_for("openrouter")
    assert ref == "secret/llm/openrouter"
    await store.put(ref, SECRET)
    assert await store.get(ref) == SECRET
    await store.check()
    await store.close()


async def test_unicode_and_empty_values(store: LocalSecretStore) -> None:
    await store.put("secret/llm/u", "ключ-🔑")
    await store.put("secret/llm/e", "")
    assert await store.get("secret/llm/u") == "ключ-🔑"
    assert await store.get("secret/llm/e") == ""


async def test_plaintext_never_stored(store: LocalSecretStore, sm: Sessionmaker, tmp_path: Path) -> None:
    await store.put("secret/llm/p", SECRET)
    row = await _row(sm, "secret/llm/p")
    for blob in (row.ciphertext, row.wrapped_key, row.nonce, row.key_nonce):
        assert SECRET.encode() not in blob
    assert len(row.nonce) == 12 and len(row.key_nonce) == 12
    assert len(row.wrapped_key) == 32 + 16  # data key + GCM tag
    # Not anywhere in the database files either (main file and write-ahead log).
    for path in tmp_path.glob("x.db*"):
        assert SECRET.encode() not in path.read_bytes()


async def test_each_secret_has_its_own_data_key(store: LocalSecretStore, sm: Sessionmaker) -> None:
    await store.put("secret/llm/a", SECRET)
    await store.put("secret/llm/b", SECRET)
    a, b = await _row(sm, "secret/llm/a"), await _row(sm, "secret/llm/b")
    assert a.ciphertext != b.ciphertext
    assert a.wrapped_key != b.wrapped_key
    assert a.nonce != b.nonce
    await store.put("secret/llm/a", SECRET)  # re-put of the same value: fresh key and nonce too
    a2 = await _row(sm, "secret/llm/a")
    assert a2.ciphertext != a.ciphertext and a2.wrapped_key != a.wrapped_key
    assert await store.get("secret/llm/a") == await store.get("secret/llm/b") == SECRET


async def test_wrong_master_key(store: LocalSecretStore, sm: Sessionmaker, master_key: bytes) -> None:
    await store.put("secret/llm/x", SECRET)
    other_key = os.urandom(32)
    with pytest.raises(SecretStoreUnavailable) as info:
        await LocalSecretStore(sm, other_key).get("secret/llm/x")
    message = str(info.value)
    assert "cannot decrypt secret/llm/x" in message and "wrong master key" in message
    assert info.value.status_code == 503
    _assert_safe(message, master_key)
    _assert_safe(message, other_key)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("column", ["ciphertext", "nonce", "wrapped_key", "key_nonce"])
async def test_tampered_row(
    store: LocalSecretStore, sm: Sessionmaker, master_key: bytes, column: str
) -> None:
    await store.put("secret/llm/t", SECRET)
    row = await _row(sm, "secret/llm/t")
    await _patch_row(sm, "secret/llm/t", **{column: _flip(getattr(row, column), 3)})
    with pytest.raises(SecretStoreUnavailable, match=r"cannot decrypt secret/llm/t: .*tampered") as info:
        await store.get("secret/llm/t")
    _assert_safe(str(info.value), master_key)


async def test_truncated_ciphertext(store: LocalSecretStore, sm: Sessionmaker) -> None:
    await store.put("secret/llm/t", SECRET)
    await _patch_row(sm, "secret/llm/t", ciphertext=b"short", nonce=b"")
    with pytest.raises(SecretStoreUnavailable, match="tampered"):
        await store.get("secret/llm/t")


async def test_ref_is_bound(store: LocalSecretStore, sm: Sessionmaker) -> None:
    await store.put("secret/llm/victim", SECRET)
    src = await _row(sm, "secret/llm/victim")
    async with sm() as session:
        session.add(
            StoredSecret(
                ref="secret/llm/attacker",
                wrapped_key=src.wrapped_key,
                key_nonce=src.key_nonce,
                nonce=src.nonce,
                ciphertext=src.ciphertext,
            )
        )
        await session.commit()
    with pytest.raises(SecretStoreUnavailable, match="cannot decrypt secret/llm/attacker"):
        await store.get("secret/llm/attacker")
    assert await store.get("secret/llm/victim") == SECRET


async def test_replace_and_delete(store: LocalSecretStore, sm: Sessionmaker) -> None:
    ref = store.ref_for("p")
    await store.put(ref, "first-value-123456")
    created = (await _row(sm, ref)).created_at
    await store.put(ref, "second-value-654321")
    assert await store.get(ref) == "second-value-654321"
    assert (await _row(sm, ref)).created_at == created
    await store.delete(ref)
    with pytest.raises(SecretNotFound):
        await store.get(ref)
    await store.delete(ref)  # absent: no error


async def test_missing(store: LocalSecretStore) -> None:
    with pytest.raises(SecretNotFound) as info:
        await store.get("secret/llm/nobody")
    assert info.value.status_code == 404


async def test_database_errors_are_unavailable(tmp_path: Path, master_key: bytes) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.db")  # no tables created
    store = LocalSecretStore(make_sessionmaker(engine), master_key)
    try:
        for call in (store.check(), store.get("secret/llm/x"), store.put("secret/llm/x", SECRET)):
            with pytest.raises(SecretStoreUnavailable, match="local secret store: database error") as info:
                await call
            _assert_safe(str(info.value), master_key)
    finally:
        await engine.dispose()


async def test_unreachable_database(tmp_path: Path, master_key: bytes) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db")
    try:
        with pytest.raises(SecretStoreUnavailable):
            await LocalSecretStore(make_sessionmaker(engine), master_key).check()
    finally:
        await engine.dispose()
        await asyncio.sleep(
            0.1
        )  # let aiosqlite's worker thread finish its failed connect before the loop closes


def test_bad_master_key_and_ref(sm: Sessionmaker) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LocalSecretStore(sm, b"short")
    store = LocalSecretStore(sm, os.urandom(32))
    with pytest.raises(ValueError):
        store.ref_for("a/b")


def test_factory(sm: Sessionmaker) -> None:
    local = build_secret_store(Settings(_env_file=None, master_key="11" * 32), sm)
    assert isinstance(local, LocalSecretStore)
    with pytest.raises(SecretStoreConfigError, match="32 bytes"):
        build_secret_store(Settings(_env_file=None, master_key="11" * 8), sm)

    no_token = Settings(_env_file=None, secret_backend="vault", vault_token=None)
    with pytest.raises(SecretStoreConfigError, match="TURNOUT_VAULT_TOKEN") as info:
        build_secret_store(no_token, sm)
    assert isinstance(info.value, ValueError)

    settings = Settings(
        _env_file=None,
        secret_backend="vault",
        vault_token="hvs.very-secret-token",
        vault_addr="http://127.0.0.1:8200/",
        vault_mount="kv",
        vault_path_prefix="turnout/llm",
    )
    vault = build_secret_store(settings, sm)
    assert isinstance(vault, VaultSecretStore) and vault.backend == "vault"
    assert vault.ref_for("openrouter") == "kv/turnout/llm/openrouter"
    assert "very-secret-token" not in repr(vault)


async def test_credentials_are_stored_whole_and_plain_keys_read_as_api_key(store: LocalSecretStore) -> None:
    fields = {
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPx",
    }
    await store.put_fields("secret/llm/bedrock", fields)
    assert await store.get_fields("secret/llm/bedrock") == fields
    # every field is redacted from what leaves the process once the store has read it
    assert "wJalrXUtnFEMI/K7MDENG/bPx" not in redact_text("denied: wJalrXUtnFEMI/K7MDENG/bPx")
    await store.put("secret/llm/old", SECRET)  # what installs before structured credentials hold
    assert await store.get_fields("secret/llm/old") == {"api_key": SECRET}
    await store.put("secret/llm/json", '{"not": 1}')  # a plain key that happens to look like JSON
    assert await store.get_fields("secret/llm/json") == {"api_key": '{"not": 1}'}
