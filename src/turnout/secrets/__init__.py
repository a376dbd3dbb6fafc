"""Secret storage for provider API keys: a local encrypted store or Vault/OpenBao KV v2."""

from turnout.secrets.base import SecretNotFound, SecretStore, SecretStoreUnavailable, mask_secret
from turnout.secrets.factory import SecretStoreConfigError, build_secret_store
from turnout.secrets.local import LocalSecretStore
from turnout.secrets.vault import VaultSecretStore

__all__ = [
    "LocalSecretStore",
    "SecretNotFound",
    "SecretStore",
    "SecretStoreConfigError",
    "SecretStoreUnavailable",
    "VaultSecretStore",
    "build_secret_store",
    "mask_secret",
]
