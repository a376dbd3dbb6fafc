"""Settings, read from ``TURNOUT_*`` environment variables (and a ``.env`` file)."""

from __future__ import annotations

import os
import secrets
import sys
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from turnout.database_url import checked_postgres_url


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def default_data_dir() -> Path:
    """Where Turnout keeps its files unless told otherwise: one per-user place (XDG), so a server
    and a CLI started from different directories share the same database and key files."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "turnout"


def _read_or_create_key_file(path: Path, nbytes: int) -> bytes:
    """Return the key stored at ``path``, creating it on first use.

    Several processes may start together on a fresh data dir: the key is written in full to a
    private (0600 from its creation) temporary file, which is then hard-linked into place. The link
    fails if another process won, and that process's complete file is read instead; nobody ever
    reads a half-written or empty key, and the file is never readable by others."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(nbytes)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.hex().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    finally:
        temporary.unlink(missing_ok=True)
    print(f"turnout: created a new key file {path}", file=sys.stderr)
    return key


_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


class Settings(BaseSettings):
    """Every knob of Turnout. Each field maps to ``TURNOUT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL (postgresql:// and sqlite:// get the async drivers); unset: the "
        "embedded SQLite file data_dir/turnout.db",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535, description="0: any free port")
    workers: int = Field(default=1, ge=1, description="worker processes of `turnout serve`")
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="a connection's time to send a complete request header block"
    )
    keep_alive_timeout_s: int = Field(default=5, ge=1, description="idle keep-alive connections close after")
    max_connections: int = Field(
        default=10_000, ge=1, description="open client connections per worker (capped below the fd limit)"
    )
    fd_reserve: int = Field(
        default=1024, ge=0, description="file descriptors kept free of client connections (upstream calls)"
    )

    secret_backend: Literal["local", "vault"] = "local"
    vault_addr: str = "http://127.0.0.1:8200"
    vault_token: SecretStr | None = None
    vault_mount: str = "secret"
    vault_path_prefix: str = "llm"
    vault_timeout_s: float = Field(default=5.0, gt=0)
    master_key: SecretStr | None = Field(
        default=None, description="hex-encoded 32-byte key; a 0600 key file in data_dir is used when unset"
    )

    jwt_secret: SecretStr | None = Field(
        default=None, description="HMAC secret; a 0600 key file in data_dir is used when unset"
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_default_ttl_s: int = Field(default=3600, ge=1)

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    allow_private_api_base: bool = Field(
        default=False, description="allow api_base on link-local / cloud-metadata addresses"
    )
    http_connect_timeout_s: float = Field(default=5.0, gt=0)
    http_read_timeout_s: float = Field(default=60.0, gt=0)
    http_total_timeout_s: float = Field(default=600.0, gt=0)
    sync_timeout_s: float = Field(default=120.0, gt=0)

    store_message_text: bool = Field(default=False, description="keep prompt and answer text on records")
    metrics: bool = Field(default=True, description="count calls for Prometheus (/metrics)")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token a scraper presents on the main port's /metrics (platform admins' "
        "JWTs are accepted too)",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="also serve /metrics, without a token, on this port"
    )
    metrics_host: str = Field(default="127.0.0.1", description="the address metrics_port listens on")
    metrics_key_labels: bool = Field(
        default=False, description="label request and cost counters by API key (one series per key)"
    )
    webhook_retry_base_s: float = Field(
        default=1.0, gt=0, description="first webhook retry delay; doubles per attempt (with jitter)"
    )
    webhook_retry_max_s: float = Field(
        default=3600.0, gt=0, description="longest delay between webhook retries"
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=100, description="attempts before a webhook delivery goes to the dead letters"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="one webhook request's total timeout")
    webhook_concurrency: int = Field(
        default=16, ge=1, le=1000, description="webhook requests in flight per process"
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS with JetStream: events published there, commands served (nats://host:4222)",
    )
    nats_stream: str = Field(default="TURNOUT_EVENTS", description="the JetStream stream Turnout creates")
    events_retention_days: float = Field(
        default=7.0, gt=0, description="delivered events are kept this long in the outbox"
    )
    journal_dir: Path | None = Field(
        default=None, description="write-ahead journal of call records; default data_dir/journal"
    )
    record_durability: Literal["fsync", "write", "async"] = Field(
        default="write",
        description="answers wait until their record is written (write: survives the process; the "
        "fdatasync follows at once, unawaited), written and fsynced (fsync: survives the machine), "
        "or do not wait (async)",
    )
    record_batch_size: int = Field(default=500, ge=1)
    record_flush_interval_s: float = Field(default=0.2, gt=0)
    snapshot_interval_s: float = Field(default=2.0, gt=0)
    redis_url: str | None = Field(
        default=None,
        description="Redis shared by the replicas: budgets, reservations, rate limits, breaker state and "
        "change events; unset: all of it in this process (one process), the ledger in the database",
    )
    redis_prefix: str = Field(
        default="turnout:",
        description="prefix of this deployment's Redis keys and of its change-event channel "
        "(<prefix>changes), so deployments can share one Redis",
    )
    redis_timeout_s: float = Field(
        default=0.5, gt=0, description="a Redis command's time before it counts as down"
    )
    redis_down_budgets: Literal["closed", "open"] = Field(
        default="closed",
        description="with Redis down, calls under a block budget are refused (503) or let through",
    )
    redis_down_limits: Literal["open", "closed"] = Field(
        default="open", description="with Redis down, rate limits are skipped (a log line) or refuse (503)"
    )
    response_cache_memory_mb: float = Field(
        default=32.0,
        ge=0,
        description="in-process LRU of cached answers in front of the response cache's store (0: none)",
    )
    sqlite_checkpoint_interval_s: float = Field(
        default=0.1, ge=0, description="SQLite WAL checkpoints in the background (0: off; commits do them)"
    )
    secret_cache_ttl_s: float = Field(default=60.0, ge=0)
    retry_max: int = Field(default=2, ge=0)
    retry_base_delay_s: float = Field(default=0.2, ge=0)
    retry_max_delay_s: float = Field(default=4.0, ge=0)
    retry_after_max_s: float = Field(default=10.0, ge=0)
    first_byte_timeout_s: float = Field(default=60.0, gt=0)
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, ge=0)

    routing_w_priority: float = Field(default=0.3, ge=0, le=1)
    routing_w_experience: float = Field(default=0.7, ge=0, le=1)
    routing_exploration: Literal["thompson", "ucb", "off"] = "thompson"
    routing_cost_tradeoff: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="quality a pricier model must add per doubling of cost, for policies that state none",
    )
    default_model: str | None = Field(default=None, description="used when the router itself fails (SRS 7.4)")
    feedback_sync_interval_s: float = Field(default=2.0, gt=0)
    task_classifier: Literal["auto", "off"] = Field(
        default="auto", description="offline task classifier when keywords find nothing (needs the extra)"
    )

    prompt_memory: bool = Field(
        default=False,
        description="route on the most similar rated prompts too, not only their task (needs the "
        "classifier extra); off by default: it did not beat per-task routing on the bundled table",
    )

    access_log: bool = Field(default=True, description="one JSON line per answered call (at log level INFO)")
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = "INFO"  # any case ("warning" too); a typo is refused naming the setting
    log_json: bool = True

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """A URL written as other tools write it (``postgresql://``, ``postgres://``, ``sqlite:///``)
        gets the async driver Turnout ships (SQLAlchemy picked psycopg or pysqlite, and failed); a
        driver given explicitly (``postgresql+asyncpg://``) is kept."""
        scheme, sep, rest = url.strip().partition("://")
        driver = _ASYNC_DRIVERS.get(scheme.lower()) if sep else None
        url = f"{driver}://{rest}" if driver else url
        return checked_postgres_url(url) if url.startswith("postgresql+asyncpg://") and "?" in url else url

    @model_validator(mode="after")
    def _embedded_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.expanduser().absolute() / 'turnout.db'}"
        return self

    @model_validator(mode="after")
    def _no_blank_secrets(self) -> Settings:
        """An empty secret (a Helm value left unset) is none: an empty metrics token counts as
        unset (it let ``Authorization: Bearer `` read /metrics), and an empty JWT secret or master
        key is refused at start-up (it failed on first use, or signed with nothing)."""
        if self.metrics_token is not None and not self.metrics_token.get_secret_value().strip():
            self.metrics_token = None
        for name in ("jwt_secret", "master_key"):
            value = getattr(self, name)
            if value is not None and not value.get_secret_value().strip():
                raise ValueError(
                    f"TURNOUT_{name.upper()} is set but empty: set it, or unset it to use the "
                    "generated key file in the data directory"
                )
        return self

    @cached_property
    def master_key_bytes(self) -> bytes:
        """The 32-byte master key that wraps the local store's data keys."""
        if self.master_key is not None:
            try:
                key = bytes.fromhex(self.master_key.get_secret_value())
            except ValueError:
                key = b""
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
