"""Settings, read from ``TURNOUT_*`` environment variables (and a ``.env`` file)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _read_or_create_key_file(path: Path, nbytes: int) -> bytes:
    """Return the key stored at ``path``, creating it (mode 0600) on first use."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(nbytes)
    fd = path.open("x")  # fails if another process raced us; then we read theirs
    try:
        path.chmod(0o600)
        fd.write(key.hex())
    finally:
        fd.close()
    return key


class Settings(BaseSettings):
    """Every knob of Turnout. Each field maps to ``TURNOUT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./turnout.db"
    data_dir: Path = Path("./.turnout")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(default=1, ge=1, description="worker processes of `turnout serve`")

    secret_backend: Literal["local", "vault"] = "local"
    vault_addr: str = "http://127.0.0.1:8200"
    vault_token: SecretStr | None = None
    vault_mount: str = "secret"
    vault_path_prefix: str = "llm"
    vault_timeout_s: float = 5.0
    master_key: SecretStr | None = Field(
        default=None, description="hex-encoded 32-byte key; a 0600 key file in data_dir is used when unset"
    )

    jwt_secret: SecretStr | None = Field(
        default=None, description="HMAC secret; a 0600 key file in data_dir is used when unset"
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_default_ttl_s: int = 3600

    max_body_bytes: int = 4 * 1024 * 1024
    allow_private_api_base: bool = Field(
        default=False, description="allow api_base on link-local / cloud-metadata addresses"
    )
    http_connect_timeout_s: float = 5.0
    http_read_timeout_s: float = 60.0
    http_total_timeout_s: float = 600.0
    sync_timeout_s: float = 120.0

    store_message_text: bool = Field(default=False, description="keep prompt and answer text on records")
    journal_dir: Path | None = Field(default=None, description="outage journal; default data_dir/journal")
    record_batch_size: int = 500
    record_flush_interval_s: float = 0.2
    snapshot_interval_s: float = 2.0
    sqlite_checkpoint_interval_s: float = Field(
        default=0.1, ge=0, description="SQLite WAL checkpoints in the background (0: off; commits do them)"
    )
    secret_cache_ttl_s: float = 60.0
    retry_max: int = 2
    retry_base_delay_s: float = 0.2
    retry_max_delay_s: float = 4.0
    retry_after_max_s: float = 10.0
    first_byte_timeout_s: float = 60.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0

    routing_w_priority: float = Field(default=0.3, ge=0, le=1)
    routing_w_experience: float = Field(default=0.7, ge=0, le=1)
    routing_exploration: Literal["thompson", "ucb", "off"] = "thompson"
    routing_exploration_rate: float = Field(default=0.45, ge=0, le=1)
    routing_cost_margin: float = Field(default=0.0275, ge=0, le=1)
    routing_size_exponent: float = Field(
        default=3.0, ge=0, le=8, description="the margin scales by (request cost / agent's typical) ** this"
    )
    default_model: str | None = Field(default=None, description="used when the router itself fails (SRS 7.4)")
    feedback_sync_interval_s: float = 2.0
    task_classifier: Literal["auto", "off"] = Field(
        default="auto", description="offline task classifier when keywords find nothing (needs the extra)"
    )

    log_level: str = "INFO"
    log_json: bool = True

    @cached_property
    def master_key_bytes(self) -> bytes:
        """The 32-byte master key that wraps the local store's data keys."""
        if self.master_key is not None:
            key = bytes.fromhex(self.master_key.get_secret_value())
            if len(key) != 32:
                raise ValueError("TURNOUT_MASTER_KEY must be 32 bytes, hex-encoded (64 characters)")
            return key
        return _read_or_create_key_file(self.data_dir / "master.key", 32)

    @cached_property
    def jwt_secret_value(self) -> str:
        """The HMAC secret tokens are signed with."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return _read_or_create_key_file(self.data_dir / "jwt.key", 32).hex()
