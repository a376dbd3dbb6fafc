"""Pick the secret store backend from the settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.config import Settings
from turnout.secrets.base import SecretStore
from turnout.secrets.local import LocalSecretStore
from turnout.secrets.vault import VaultSecretStore


class SecretStoreConfigError(ValueError):
    """The settings do not describe a usable secret store."""


def build_secret_store(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> SecretStore:
    """Build the store named by ``settings.secret_backend`` (``local`` or ``vault``)."""
    if settings.secret_backend == "local":
        try:
            master_key = settings.master_key_bytes
        except ValueError as exc:  # bad TURNOUT_MASTER_KEY; the message never contains the key
            raise SecretStoreConfigError(str(exc)) from None
        return LocalSecretStore(sessionmaker, master_key)
    if settings.secret_backend == "vault":
        token = settings.vault_token.get_secret_value() if settings.vault_token is not None else ""
        if not token.strip():
            raise SecretStoreConfigError(
                "TURNOUT_SECRET_BACKEND=vault needs TURNOUT_VAULT_TOKEN (a token allowed to read and write "
                f"{settings.vault_mount}/data/{settings.vault_path_prefix}/*)"
            )
        try:
            return VaultSecretStore(
                settings.vault_addr,
                token.strip(),
                mount=settings.vault_mount,
                prefix=settings.vault_path_prefix,
                timeout_s=settings.vault_timeout_s,
            )
        except ValueError as exc:
            raise SecretStoreConfigError(str(exc)) from None
    raise SecretStoreConfigError(f"unknown TURNOUT_SECRET_BACKEND: {settings.secret_backend!r}")
