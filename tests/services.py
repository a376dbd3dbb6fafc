"""Access to the machine's shared services for tests: PostgreSQL, with CI-aware skipping."""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest

PG_DSN = os.environ.get("TURNOUT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    """True when the suite runs under CI, where every service must be present."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(name: str, why: str) -> None:
    """Fail under CI, skip (with the reason) locally."""
    message = f"{name} unavailable: {why}"
    if in_ci():
        pytest.fail(message + " (CI=true: this test must run)")
    pytest.skip(message)


async def create_pg_database() -> tuple[str, str]:
    """Create an empty database for one test; returns (SQLAlchemy URL, name)."""
    name = f"turnout_t_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL", f"{PG_DSN}: {exc}")
        raise
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", name


async def drop_pg_database(name: str) -> None:
    """Drop a database made by create_pg_database."""
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
