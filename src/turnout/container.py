"""The container: every long-lived object of one process, built once and passed around."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from turnout.agents.service import AgentService
from turnout.auth.jwt_tokens import JwtCodec
from turnout.catalog.model_service import ModelService
from turnout.catalog.providers import ProviderService
from turnout.catalog.sync import SyncService
from turnout.config import Settings
from turnout.gateway.failover import Caller, RetryPolicy
from turnout.gateway.keys import ProviderKeys
from turnout.gateway.limits import CircuitBreakers, RpmLimiter
from turnout.gateway.pipeline import Gateway
from turnout.gateway.snapshot import SnapshotStore
from turnout.net.http import HttpClient
from turnout.records.writer import RecordWriter
from turnout.secrets import SecretStore, build_secret_store
from turnout.store.db import make_engine, make_sessionmaker


@dataclass
class Container:
    """Shared state of one process (no module-level globals)."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secrets: SecretStore
    http: HttpClient
    jwt: JwtCodec
    snapshots: SnapshotStore
    providers: ProviderService
    models: ModelService
    sync: SyncService
    agents: AgentService
    records: RecordWriter
    gateway: Gateway
    started: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Container:
        """Wire every service from settings; opens no connection yet."""
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        secrets = build_secret_store(settings, sessions)
        http = HttpClient(settings)
        snapshots = SnapshotStore(sessions, interval_s=settings.snapshot_interval_s)
        keys = ProviderKeys(secrets, settings.secret_cache_ttl_s)

        def changed() -> None:
            keys.forget()
            snapshots.trigger()

        providers = ProviderService(
            sessions, secrets, allow_private=settings.allow_private_api_base, on_change=changed
        )
        records = RecordWriter(
            sessions,
            settings.journal_dir or settings.data_dir / "journal",
            batch_size=settings.record_batch_size,
            flush_interval_s=settings.record_flush_interval_s,
        )
        caller = Caller(
            http.session,
            keys,
            CircuitBreakers(settings.breaker_threshold, settings.breaker_cooldown_s),
            RpmLimiter(),
            RetryPolicy(
                settings.retry_max,
                settings.retry_base_delay_s,
                settings.retry_max_delay_s,
                settings.retry_after_max_s,
                settings.first_byte_timeout_s,
            ),
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            secrets=secrets,
            http=http,
            jwt=JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm, settings.jwt_default_ttl_s),
            snapshots=snapshots,
            providers=providers,
            models=ModelService(sessions, on_change=snapshots.trigger),
            sync=SyncService(
                sessions,
                providers,
                http.session,
                timeout_s=settings.sync_timeout_s,
                on_change=snapshots.trigger,
            ),
            agents=AgentService(sessions, snapshots),
            records=records,
            gateway=Gateway(snapshots, caller, records, store_text=settings.store_message_text),
        )

    async def start(self) -> None:
        """Replay journaled records, load the snapshot, start background work (idempotent)."""
        if self.started:
            return
        await self.records.start()
        await self.snapshots.start()
        self.started = True

    async def aclose(self) -> None:
        """Stop background work, flush records, close connections."""
        if self.started:
            await self.snapshots.stop()
            await self.records.stop()
            self.started = False
        await self.http.close()
        await self.secrets.close()
        await self.engine.dispose()
