"""Provider administration: create, read, update, deactivate; keys go to the secret store only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.catalog.schemas import ProviderCreate, ProviderOut, ProviderUpdate
from turnout.errors import Conflict, NotFound
from turnout.net.ssrf import check_api_base
from turnout.secrets.base import SecretStore, mask_secret
from turnout.store.models import Model, Provider


async def _nothing() -> None:
    """Default change hook: nothing to refresh."""


class ProviderService:
    """The control-plane operations on providers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secrets: SecretStore,
        *,
        allow_private: bool,
        on_change: Callable[[], Awaitable[None]] = _nothing,
    ) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._allow_private = allow_private
        self._on_change = on_change

    async def create(self, body: ProviderCreate, principal: Principal) -> ProviderOut:
        """Store the key first (fail closed), then the provider row; roll the key back on failure."""
        api_base = check_api_base(body.api_base, allow_private=self._allow_private)
        async with self._sessions() as session:
            if await session.get(Provider, body.id) is not None:
                raise Conflict(f"provider '{body.id}' already exists", param="id", code="duplicate_id")
        ref = hint = None
        if body.api_key is not None:
            ref = self._secrets.ref_for(body.id)
            key = body.api_key.get_secret_value()
            await self._secrets.put(ref, key)
            hint = mask_secret(key)
        provider = Provider(
            id=body.id,
            display_name=body.display_name,
            provider_type=body.provider_type,
            api_base=api_base,
            models_endpoint=body.models_endpoint,
            api_key_ref=ref,
            api_key_hint=hint,
            api_version=body.api_version,
            rate_limit_rpm=body.rate_limit_rpm,
            is_active=True,
            created_by=principal.subject,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(provider)
        except Exception:
            if ref is not None:
                await self._secrets.delete(ref)
            async with self._sessions() as session:
                if await session.get(Provider, body.id) is not None:
                    raise Conflict(
                        f"provider '{body.id}' already exists", param="id", code="duplicate_id"
                    ) from None
            raise
        await self._on_change()
        return to_out(provider, 0)

    async def list(self, *, include_inactive: bool = True) -> list[ProviderOut]:
        """Every provider with its model count."""
        async with self._sessions() as session:
            rows = await session.execute(select(Model.provider_id, func.count()).group_by(Model.provider_id))
            counts: dict[str, int] = {pid: n for pid, n in rows}
            query = select(Provider).order_by(Provider.id)
            if not include_inactive:
                query = query.where(Provider.is_active.is_(True))
            providers = (await session.scalars(query)).all()
        return [to_out(p, counts.get(p.id, 0)) for p in providers]

    async def get(self, provider_id: str) -> ProviderOut:
        """One provider, or 404."""
        async with self._sessions() as session:
            provider = await self.load(session, provider_id)
            count = await session.scalar(select(func.count()).where(Model.provider_id == provider_id))
        return to_out(provider, count or 0)

    async def update(self, provider_id: str, body: ProviderUpdate) -> ProviderOut:
        """Change fields; a new ``api_key`` replaces the stored one in the secret store."""
        changes = body.model_dump(exclude_unset=True, exclude={"api_key"})
        if changes.get("api_base") is not None:
            changes["api_base"] = check_api_base(changes["api_base"], allow_private=self._allow_private)
        for required in ("display_name", "api_base", "is_active"):
            if required in changes and changes[required] is None:
                changes.pop(required)
        async with self._sessions.begin() as session:
            provider = await self.load(session, provider_id)
            if body.api_key is not None:
                key = body.api_key.get_secret_value()
                ref = provider.api_key_ref or self._secrets.ref_for(provider_id)
                await self._secrets.put(ref, key)
                provider.api_key_ref, provider.api_key_hint = ref, mask_secret(key)
            for field, value in changes.items():
                setattr(provider, field, value)
        await self._on_change()
        return await self.get(provider_id)

    async def deactivate(self, provider_id: str) -> ProviderOut:
        """Soft delete: the provider and its models stop being offered; history stays."""
        return await self.update(provider_id, ProviderUpdate(is_active=False))

    async def api_key(self, provider: Provider) -> str | None:
        """The provider's key from the secret store (raises 503 when the store fails)."""
        if provider.api_key_ref is None:
            return None
        return await self._secrets.get(provider.api_key_ref)

    @staticmethod
    async def load(session: AsyncSession, provider_id: str) -> Provider:
        """The ORM row, or 404."""
        provider = await session.get(Provider, provider_id)
        if provider is None:
            raise NotFound(f"provider '{provider_id}' not found", param="provider_id")
        return provider


def to_out(provider: Provider, model_count: int) -> ProviderOut:
    """Public view of a provider: key reference and masked hint only."""
    return ProviderOut(
        id=provider.id,
        display_name=provider.display_name,
        provider_type=provider.provider_type,
        api_base=provider.api_base,
        models_endpoint=provider.models_endpoint,
        api_key_ref=provider.api_key_ref,
        api_key_hint=provider.api_key_hint,
        api_version=provider.api_version,
        rate_limit_rpm=provider.rate_limit_rpm,
        is_active=provider.is_active,
        model_count=model_count,
        last_synced=provider.last_synced,
        last_sync_error=provider.last_sync_error,
        created_by=provider.created_by,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )
