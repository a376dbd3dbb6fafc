"""The container: every long-lived object of one process, built once and passed around."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from turnout.auth.jwt_tokens import JwtCodec
from turnout.catalog.model_service import ModelService
from turnout.catalog.providers import ProviderService
from turnout.catalog.sync import SyncService
from turnout.config import Settings
from turnout.net.http import HttpClient
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
    providers: ProviderService
    models: ModelService
    sync: SyncService

    @classmethod
    def build(cls, settings: Settings) -> Container:
        """Wire every service from settings; opens no connection yet."""
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        secrets = build_secret_store(settings, sessions)
        http = HttpClient(settings)
        providers = ProviderService(sessions, secrets, allow_private=settings.allow_private_api_base)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            secrets=secrets,
            http=http,
            jwt=JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm, settings.jwt_default_ttl_s),
            providers=providers,
            models=ModelService(sessions),
            sync=SyncService(sessions, providers, http.session, timeout_s=settings.sync_timeout_s),
        )

    async def aclose(self) -> None:
        """Close connections in reverse order of need."""
        await self.http.close()
        await self.secrets.close()
        await self.engine.dispose()
