"""Provider administration: create, read, update, deactivate; credentials go to the secret store only.

A credential is given as ``api_key`` (the short form) and/or ``credentials: {field: value}``; its
fields are checked against the provider type's credential schema (``ProviderSpec.credentials``)
and stored whole under the provider's secret reference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.catalog.fetch import pricing_source
from turnout.catalog.schemas import ProviderCreate, ProviderOut, ProviderUpdate
from turnout.catalog.self_hosted import is_self_hosted
from turnout.errors import Conflict, InvalidRequest, NotFound
from turnout.modelinfo.pricing import price_ids
from turnout.net.ssrf import check_api_base
from turnout.providers.credentials import NO_CREDENTIALS, Credentials
from turnout.providers.registry import spec_for
from turnout.secrets.base import SecretNotFound, SecretStore, mask_secret
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
        """Store the credential first (fail closed), then the provider row; roll it back on failure."""
        api_base = check_api_base(body.api_base, allow_private=self._allow_private)
        _check_price_id(body.price_id)
        fields = given_fields(body.api_key, body.credentials)
        check_fields(body.provider_type, fields)
        async with self._sessions() as session:
            if await session.get(Provider, body.id) is not None:
                raise Conflict(f"provider '{body.id}' already exists", param="id", code="duplicate_id")
        ref = hint = None
        if fields:
            ref = self._secrets.ref_for(body.id)
            await self._secrets.put_fields(ref, fields)
            hint = _hint(fields)
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
            default_price_input=body.default_price_input,
            default_price_output=body.default_price_output,
            self_hosted=body.self_hosted,
            price_id=body.price_id,
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
        """Change fields; a new ``api_key`` or ``credentials`` replaces those fields of the stored
        credential (fields not given are kept)."""
        changes = body.model_dump(exclude_unset=True, exclude={"api_key", "credentials"})
        given = given_fields(body.api_key, body.credentials)
        if changes.get("api_base") is not None:
            changes["api_base"] = check_api_base(changes["api_base"], allow_private=self._allow_private)
        _check_price_id(changes.get("price_id"))
        for required in ("display_name", "api_base", "is_active"):
            if required in changes and changes[required] is None:
                changes.pop(required)
        async with self._sessions.begin() as session:
            provider = await self.load(session, provider_id)
            if given:
                fields = await self._merged(provider, given)
                ref = provider.api_key_ref or self._secrets.ref_for(provider_id)
                await self._secrets.put_fields(ref, fields)
                provider.api_key_ref, provider.api_key_hint = ref, _hint(fields)
            for field, value in changes.items():
                setattr(provider, field, value)
        await self._on_change()
        return await self.get(provider_id)

    async def deactivate(self, provider_id: str) -> ProviderOut:
        """Soft delete: the provider and its models stop being offered; history stays."""
        return await self.update(provider_id, ProviderUpdate(is_active=False))

    async def _merged(self, provider: Provider, given: dict[str, str]) -> dict[str, str]:
        """``given`` over the stored fields it does not replace, checked against the schema."""
        fields = given
        schema = spec_for(provider.provider_type).credentials
        if provider.api_key_ref is not None and not set(schema.fields) <= set(given):
            try:
                fields = {**await self._secrets.get_fields(provider.api_key_ref), **given}
            except SecretNotFound:
                pass
        check_fields(provider.provider_type, fields)
        return fields

    async def credentials(self, provider: Provider) -> Credentials:
        """The provider's credential from the secret store (raises 503 when the store fails)."""
        if provider.api_key_ref is None:
            return NO_CREDENTIALS
        return Credentials(await self._secrets.get_fields(provider.api_key_ref))

    async def api_key(self, provider: Provider) -> str | None:
        """The ``api_key`` field of the provider's credential (see :meth:`credentials`)."""
        return (await self.credentials(provider)).api_key

    @staticmethod
    async def load(session: AsyncSession, provider_id: str) -> Provider:
        """The ORM row, or 404."""
        provider = await session.get(Provider, provider_id)
        if provider is None:
            raise NotFound(f"provider '{provider_id}' not found", param="provider_id")
        return provider


def given_fields(api_key: SecretStr | None, credentials: dict[str, SecretStr] | None) -> dict[str, str]:
    """The credential fields of a request: ``credentials``, with ``api_key`` as its short form."""
    fields = {name: value.get_secret_value() for name, value in (credentials or {}).items()}
    if api_key is not None:
        if "api_key" in fields:
            raise InvalidRequest(
                "give the key as api_key or as credentials.api_key, not both", param="credentials.api_key"
            )
        fields["api_key"] = api_key.get_secret_value()
    return fields


def check_fields(provider_type: str, fields: dict[str, str]) -> None:
    """A 400 naming the field when ``fields`` break the type's credential schema (public: a template
    checks the fields it completes before they meet the body's count limit)."""
    problem = spec_for(provider_type).credentials.problem(fields)
    if problem is not None:
        name, message = problem
        raise InvalidRequest(f"credentials.{name}: {message}", param=f"credentials.{name}")


def _check_price_id(price_id: str | None) -> None:
    """A 400 naming ``price_id`` when genai-prices has no such provider (its models would sync unpriced)."""
    if price_id is not None and price_id not in price_ids():
        raise InvalidRequest(
            f"price_id: genai-prices has no provider '{price_id}' (known: {', '.join(sorted(price_ids()))})",
            param="price_id",
        )


def _hint(fields: dict[str, str]) -> str:
    """The masked hint shown for a credential: of its API key, else of its first field."""
    return mask_secret(fields.get("api_key") or next(iter(fields.values())))


def _price(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


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
        default_price_input=_price(provider.default_price_input),
        default_price_output=_price(provider.default_price_output),
        self_hosted=provider.self_hosted,
        is_self_hosted=is_self_hosted(provider),
        price_id=provider.price_id,
        pricing_source=pricing_source(provider.provider_type, provider.price_id),
        is_active=provider.is_active,
        model_count=model_count,
        last_synced=provider.last_synced,
        last_sync_error=provider.last_sync_error,
        created_by=provider.created_by,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )
