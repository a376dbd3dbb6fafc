"""HashiCorp Vault / OpenBao backend over the KV v2 HTTP API (aiohttp, no client library).

Fails closed: anything but a clear answer from Vault raises SecretStoreUnavailable (503).
Neither the token nor a secret value ever appears in a message, exception or log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

import aiohttp

from turnout.redaction import KNOWN_SECRETS
from turnout.secrets.base import LEGACY_FIELD, SecretNotFound, SecretStoreUnavailable, remember

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
_FIELD = LEGACY_FIELD


def _clean_path(value: str, what: str) -> str:
    """Strip slashes and validate each segment of a mount or prefix."""
    value = value.strip("/")
    for segment in value.split("/") if value else []:
        if not _SEGMENT.match(segment):
            raise ValueError(f"invalid vault {what}: {value!r}")
    return value


class VaultSecretStore:
    """Secrets in a KV v2 engine of Vault or OpenBao, one secret per provider: a credential's fields
    are the secret's keys (``api_key``, as every secret written before credentials had fields)."""

    backend = "vault"

    def __init__(
        self,
        addr: str,
        token: str,
        mount: str = "secret",
        prefix: str = "llm",
        timeout_s: float = 5.0,
    ) -> None:
        if not token:
            raise ValueError("vault token must not be empty")
        if not addr.startswith(("http://", "https://")):
            raise ValueError(f"vault address must start with http:// or https://, got {addr!r}")
        self.addr = addr.rstrip("/")
        self.mount = _clean_path(mount, "mount")
        if not self.mount:
            raise ValueError("vault mount must not be empty")
        self.prefix = _clean_path(prefix, "path prefix")
        self.timeout_s = timeout_s
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"VaultSecretStore(addr={self.addr!r}, mount={self.mount!r}, prefix={self.prefix!r})"

    # -- references ---------------------------------------------------------------------------

    @property
    def _ref_base(self) -> str:
        return f"{self.mount}/{self.prefix}" if self.prefix else self.mount

    def ref_for(self, provider_id: str) -> str:
        """``{mount}/{prefix}/{provider_id}``, e.g. ``secret/llm/openrouter``."""
        if not _SEGMENT.match(provider_id):
            raise ValueError(f"invalid provider id for a vault path: {provider_id!r}")
        return f"{self._ref_base}/{provider_id}"

    def _secret_path(self, ref: str) -> str:
        """The path under the mount (``{prefix}/{id}``) for a ref this store issued."""
        base = self._ref_base + "/"
        secret_id = ref[len(base) :] if ref.startswith(base) else ""
        if not _SEGMENT.match(secret_id):
            raise ValueError(f"secret ref {ref!r} is not under {base!r}")
        return f"{self.prefix}/{secret_id}" if self.prefix else secret_id

    # -- HTTP -----------------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"X-Vault-Token": self._token, "X-Vault-Request": "true"},
            )
        return self._session

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _unreachable(self, reason: str) -> SecretStoreUnavailable:
        return SecretStoreUnavailable(self._scrub(f"vault unreachable at {self.addr}: {reason}"))

    async def _request(
        self, method: str, path: str, json: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Send one request; return (status, JSON body or {}). Transport failures raise 503."""
        url = f"{self.addr}/v1/{path}"
        try:
            async with self._client().request(method, url, json=json) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except TimeoutError:
            raise self._unreachable(f"no answer within {self.timeout_s:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            reason = getattr(getattr(exc, "os_error", None), "strerror", None) or type(exc).__name__
            raise self._unreachable(f"cannot connect ({reason})") from None
        except aiohttp.ClientError as exc:
            # ClientResponseError carries request headers (the token): never chain or format it.
            raise self._unreachable(type(exc).__name__) from None
        return status, body if isinstance(body, dict) else {}

    def _raise_for(self, status: int, body: dict[str, Any], action: str) -> NoReturn:
        """Map a non-success answer to SecretStoreUnavailable."""
        errors = body.get("errors") or []
        detail = "; ".join(str(e) for e in errors)[:300]
        if status == 403:
            raise SecretStoreUnavailable("vault denied access (403): check TURNOUT_VAULT_TOKEN policy")
        if status == 503 and ("sealed" in detail.lower() or body.get("sealed") is True):
            raise SecretStoreUnavailable("vault is sealed")
        if status == 404 and "no handler for route" in detail:
            raise SecretStoreUnavailable(f"vault has no KV v2 engine mounted at '{self.mount}/'")
        suffix = f": {self._scrub(detail)}" if detail else ""
        raise SecretStoreUnavailable(f"vault error {status} while {action}{suffix}")

    # -- SecretStore ----------------------------------------------------------------------------

    async def put(self, ref: str, value: str) -> None:
        """Write a new version of the secret at ``ref`` (as its ``api_key`` field)."""
        KNOWN_SECRETS.add(value)
        await self._write(ref, {_FIELD: value})

    async def put_fields(self, ref: str, fields: Mapping[str, str]) -> None:
        """Write a new version of the credential at ``ref``: one KV key per field."""
        remember(fields)
        await self._write(ref, fields)

    async def _write(self, ref: str, fields: Mapping[str, str]) -> None:
        path = f"{self.mount}/data/{self._secret_path(ref)}"
        status, body = await self._request("POST", path, json={"data": dict(fields)})
        if status not in (200, 204):
            self._raise_for(status, body, f"writing {ref}")

    async def get(self, ref: str) -> str:
        """Read the latest version's ``api_key``."""
        value = (await self._read(ref)).get(_FIELD)
        if not isinstance(value, str):
            raise SecretNotFound(f"secret at {ref} has no '{_FIELD}' field")
        KNOWN_SECRETS.add(value)  # from here on redacted from answers, records and logs
        return value

    async def get_fields(self, ref: str) -> dict[str, str]:
        """The latest version's string fields (the credential)."""
        fields = {k: v for k, v in (await self._read(ref)).items() if isinstance(v, str)}
        if not fields:
            raise SecretNotFound(f"secret at {ref} has no string fields")
        remember(fields)  # from here on redacted from answers, records and logs
        return fields

    async def _read(self, ref: str) -> dict[str, Any]:
        path = f"{self.mount}/data/{self._secret_path(ref)}"
        status, body = await self._request("GET", path)
        if status == 404 and not body.get("errors"):  # KV v2: never written, or latest version deleted
            raise SecretNotFound(f"no secret at {ref}")
        if status != 200:
            self._raise_for(status, body, f"reading {ref}")
        data = (body.get("data") or {}).get("data") or {}
        return data if isinstance(data, dict) else {}

    async def delete(self, ref: str) -> None:
        """Delete the metadata, which removes every version; absent is fine."""
        path = f"{self.mount}/metadata/{self._secret_path(ref)}"
        status, body = await self._request("DELETE", path)
        if status not in (200, 204, 404) or (status == 404 and body.get("errors")):
            self._raise_for(status, body, f"deleting {ref}")

    async def check(self) -> None:
        """Vault must be initialised, unsealed and active, and the token must be valid."""
        status, body = await self._request("GET", "sys/health?standbyok=true&perfstandbyok=true")
        if body.get("initialized") is False or status == 501:
            raise SecretStoreUnavailable("vault is not initialised")
        if body.get("sealed") is True:
            raise SecretStoreUnavailable("vault is sealed")
        if status != 200:
            self._raise_for(status, body, "checking health")
        status, body = await self._request("GET", "auth/token/lookup-self")
        if status != 200:
            self._raise_for(status, body, "verifying the token")

    async def close(self) -> None:
        """Close the HTTP session (a later call opens a new one)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
