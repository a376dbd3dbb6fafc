"""Migration 0007 (provider default prices and self-hosted setting, model aliases) goes up and
down on SQLite and PostgreSQL with a catalog in place, keeping its rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.store.db import make_engine
from turnout.store.migrate import downgrade, upgrade

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def engine(empty_db_url: str) -> AsyncIterator[AsyncEngine]:
    built = make_engine(empty_db_url)
    try:
        yield built
    finally:
        await built.dispose()


async def _columns(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_columns(table))
    return {column["name"] for column in found}


async def _seed_catalog(engine: AsyncEngine) -> None:
    """A provider with a model, and an agent that enabled it (the model is referenced)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO llm_providers (id, display_name, provider_type, api_base, is_active, "
                "created_at, updated_at) VALUES ('local', 'Local', 'custom', 'http://vllm:8000/v1', "
                ":t, :now, :now)"
            ),
            {"t": True, "now": NOW},
        )
        await conn.execute(
            text(
                "INSERT INTO llm_model_catalog (id, provider_id, external_id, display_name, model_type, "
                "capabilities, capability_mask, priority, cost_tier, domains, is_available, is_enabled, "
                "is_custom, overrides, metadata, created_at, updated_at) VALUES ('local/m', 'local', 'm', "
                "'m', 'chat', '[]', 0, 50, 'standard', '[]', :t, :t, :f, '[]', '{}', :now, :now)"
            ),
            {"t": True, "f": False, "now": NOW},
        )
        await conn.execute(
            text(
                "INSERT INTO agents (id, tenant_id, name, capsule, is_active, created_at, updated_at) "
                "VALUES ('bot', 'acme', 'Bot', '{}', :t, :now, :now)"
            ),
            {"t": True, "now": NOW},
        )
        await conn.execute(
            text(
                "INSERT INTO agent_model_config (id, tenant_id, agent_id, model_id, is_enabled, enabled_at) "
                "VALUES ('c1', 'acme', 'bot', 'local/m', :t, :now)"
            ),
            {"t": True, "now": NOW},
        )


async def test_0007_up_and_down_keeps_the_catalog(engine: AsyncEngine) -> None:
    await upgrade(engine, "0006")
    await _seed_catalog(engine)

    await upgrade(engine, "0007")
    assert {"default_price_input", "default_price_output", "self_hosted"} <= await _columns(
        engine, "llm_providers"
    )
    assert "alias" in await _columns(engine, "llm_model_catalog")
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE llm_providers SET default_price_input = 0, default_price_output = 0.5")
        )
        await conn.execute(text("UPDATE llm_model_catalog SET alias = 'smol'"))
        prices = (
            await conn.execute(text("SELECT default_price_input, default_price_output FROM llm_providers"))
        ).one()
        assert (float(prices[0]), float(prices[1])) == (0.0, 0.5)
    with pytest.raises(IntegrityError):  # aliases are unique
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO llm_model_catalog (id, provider_id, external_id, alias, display_name, "
                    "model_type, capabilities, capability_mask, priority, cost_tier, domains, "
                    "is_available, is_enabled, is_custom, overrides, metadata, created_at, updated_at) "
                    "VALUES ('local/n', 'local', 'n', 'smol', 'n', 'chat', '[]', 0, 50, 'standard', '[]', "
                    ":t, :t, :f, '[]', '{}', :now, :now)"
                ),
                {"t": True, "f": False, "now": NOW},
            )

    await downgrade(engine, "0006")
    assert not {"default_price_input", "default_price_output", "self_hosted"} & await _columns(
        engine, "llm_providers"
    )
    assert "alias" not in await _columns(engine, "llm_model_catalog")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT id FROM llm_model_catalog"))).scalars().all() == ["local/m"]
        assert (await conn.execute(text("SELECT model_id FROM agent_model_config"))).scalars().all() == [
            "local/m"
        ]

    await upgrade(engine)  # and up again
    assert "alias" in await _columns(engine, "llm_model_catalog")
