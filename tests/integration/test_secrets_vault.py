"""VaultSecretStore against a real OpenBao dev server (KV v2 at ``secret/``)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fixtures.openbao import OpenBao, free_port, openbao, openbao_fresh  # noqa: F401
from turnout.secrets import SecretNotFound, SecretStore, SecretStoreUnavailable, VaultSecretStore

pytestmark = pytest.mark.vault

SECRET = "sk-ant-api03-" + uuid.uuid4().hex


def _pid() -> str:
    return "p-" + uuid.uuid4().hex[:12]


def _assert_safe(exc: BaseException, *tokens: str) -> None:
    """Neither the message nor anything chained to it shows a token or the secret."""
    seen: BaseException | None = exc
    while seen is not None:
        for text in (str(seen), repr(seen)):
            assert SECRET not in text
            for token in tokens:
                assert token not in text
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


@pytest.fixture
async def store(openbao: OpenBao) -> AsyncIterator[VaultSecretStore]:  # noqa: F811
    vault = VaultSecretStore(openbao.addr, openbao.token, timeout_s=5.0)
    yield vault
    await vault.close()


async def test_round_trip_and_kv_v2_layout(store: VaultSecretStore, openbao: OpenBao) -> None:  # noqa: F811
    assert isinstance(store, SecretStore) and store.backend == "vault"
    pid = _pid()
    ref = store.ref_for(pid)
    assert ref == f"secret/llm/{pid}"
    await store.put(ref, SECRET)
    assert await store.get(ref) == SECRET

    status, body = openbao.api("GET", f"secret/data/llm/{pid}")
    assert status == 200
    assert body["data"]["data"] == {"api_key": SECRET}
    assert body["data"]["metadata"]["version"] == 1

    await store.put(ref, SECRET + "-rotated")
    assert await store.get(ref) == SECRET + "-rotated"
    status, body = openbao.api("GET", f"secret/metadata/llm/{pid}")
    assert status == 200 and body["data"]["current_version"] == 2


async def test_credential_fields_are_kv_keys_and_old_secrets_read_as_api_key(
    store: VaultSecretStore,
    openbao: OpenBao,  # noqa: F811
) -> None:
    pid = _pid()
    ref = store.ref_for(pid)
    fields = {"aws_access_key_id": "AKIA" + uuid.uuid4().hex[:16].upper(), "aws_secret_access_key": SECRET}
    await store.put_fields(ref, fields)
    status, body = openbao.api("GET", f"secret/data/llm/{pid}")
    assert status == 200 and body["data"]["data"] == fields
    assert await store.get_fields(ref) == fields
    await store.put(ref, SECRET)  # the layout every secret written before credentials had fields has
    assert await store.get_fields(ref) == {"api_key": SECRET}


async def test_delete_removes_all_versions(store: VaultSecretStore, openbao: OpenBao) -> None:  # noqa: F811
    ref = store.ref_for(_pid())
    await store.put(ref, SECRET)
    await store.put(ref, SECRET + "2")
    await store.delete(ref)
    with pytest.raises(SecretNotFound):
        await store.get(ref)
    status, _ = openbao.api("GET", f"secret/metadata/{ref.removeprefix('secret/')}")
    assert status == 404
    await store.delete(ref)  # absent: no error


async def test_missing(store: VaultSecretStore) -> None:
    with pytest.raises(SecretNotFound) as info:
        await store.get(store.ref_for(_pid()))
    assert info.value.status_code == 404


async def test_soft_deleted_latest_version_is_missing(store: VaultSecretStore, openbao: OpenBao) -> None:  # noqa: F811
    pid = _pid()
    await store.put(store.ref_for(pid), SECRET)
    status, _ = openbao.api("DELETE", f"secret/data/llm/{pid}")  # KV v2 soft delete of the latest
    assert status == 204
    with pytest.raises(SecretNotFound):
        await store.get(store.ref_for(pid))


async def test_check_healthy(store: VaultSecretStore) -> None:
    await store.check()
    await store.close()
    await store.check()  # a new HTTP session after close


async def test_unreachable_address(openbao: OpenBao) -> None:  # noqa: F811
    port = free_port()  # nothing listens here: connection refused
    vault = VaultSecretStore(f"http://127.0.0.1:{port}", openbao.token, timeout_s=2.0)
    try:
        for call in (vault.check(), vault.get(vault.ref_for("x")), vault.put(vault.ref_for("x"), SECRET)):
            started = time.monotonic()
            with pytest.raises(SecretStoreUnavailable, match=f"vault unreachable at http://127.0.0.1:{port}"):
                await call
            assert time.monotonic() - started < 3.0
    finally:
        await vault.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


async def test_timeout(silent_port: int, openbao: OpenBao) -> None:  # noqa: F811
    vault = VaultSecretStore(f"http://127.0.0.1:{silent_port}", openbao.token, timeout_s=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(SecretStoreUnavailable, match=r"unreachable .*no answer within 0\.5s") as info:
            await vault.get(vault.ref_for("x"))
    finally:
        await vault.close()
    assert time.monotonic() - started < 2.0
    _assert_safe(info.value, openbao.token)


async def test_denied_token(openbao: OpenBao, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    root = VaultSecretStore(openbao.addr, openbao.token)
    ref = root.ref_for(_pid())
    await root.put(ref, SECRET)
    await root.close()

    limited = openbao.create_deny_token()
    vault = VaultSecretStore(openbao.addr, limited)
    try:
        for call in (vault.get(ref), vault.put(ref, SECRET), vault.delete(ref), vault.check()):
            with pytest.raises(SecretStoreUnavailable, match=r"denied access \(403\)") as info:
                await call
            assert info.value.status_code == 503
            _assert_safe(info.value, limited, openbao.token)
    finally:
        await vault.close()
    assert limited not in caplog.text and SECRET not in caplog.text


async def test_invalid_token(openbao: OpenBao) -> None:  # noqa: F811
    bogus = "s." + uuid.uuid4().hex
    vault = VaultSecretStore(openbao.addr, bogus)
    try:
        with pytest.raises(SecretStoreUnavailable, match="403") as info:
            await vault.check()
        _assert_safe(info.value, bogus)
    finally:
        await vault.close()


async def test_sealed(openbao_fresh: OpenBao) -> None:  # noqa: F811
    vault = VaultSecretStore(openbao_fresh.addr, openbao_fresh.token)
    ref = vault.ref_for("sealed-provider")
    try:
        await vault.put(ref, SECRET)
        await vault.check()
        openbao_fresh.seal()
        for call in (vault.get(ref), vault.put(ref, SECRET), vault.check()):
            with pytest.raises(SecretStoreUnavailable, match="vault is sealed") as info:
                await call
            _assert_safe(info.value, openbao_fresh.token)
    finally:
        await vault.close()


async def test_missing_mount(openbao: OpenBao) -> None:  # noqa: F811
    vault = VaultSecretStore(openbao.addr, openbao.token, mount="no-such-mount")
    try:
        with pytest.raises(SecretStoreUnavailable, match="no KV v2 engine mounted at 'no-such-mount/'"):
            await vault.get(vault.ref_for("x"))
    finally:
        await vault.close()


async def test_refs_are_validated(store: VaultSecretStore) -> None:
    with pytest.raises(ValueError):
        store.ref_for("../sys")
    with pytest.raises(ValueError):
        await store.get("other/llm/x")
    with pytest.raises(ValueError):
        await store.get("secret/llm/../../sys/seal")
    assert store.ref_for("openrouter") == "secret/llm/openrouter"
    assert VaultSecretStore("http://v", "t", mount="kv/", prefix="/a/b/").ref_for("x") == "kv/a/b/x"
    assert VaultSecretStore("http://v", "t", prefix="").ref_for("x") == "secret/x"


def test_repr_hides_token() -> None:
    token = "hvs." + uuid.uuid4().hex
    vault = VaultSecretStore("http://127.0.0.1:8200", token)
    assert token not in repr(vault)
    with pytest.raises(ValueError):
        VaultSecretStore("http://127.0.0.1:8200", "")
