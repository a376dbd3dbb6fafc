"""A database URL written as libpq and other tools write it gets what Turnout's async drivers take:
``postgresql://...?sslmode=require`` failed at connect with asyncpg's "connect() got an unexpected
keyword argument 'sslmode'"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from turnout.config import Settings


def _url(url: str) -> str:
    return Settings(database_url=url, _env_file=None).database_url  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
        ("postgres://u:p%40ss@h:5433/db?sslmode=verify-full", "postgresql+asyncpg://u:p%40ss@h:5433/db?ssl=verify-full"),
        ("postgresql+asyncpg://u@h/db?sslmode=disable&application_name=x", "postgresql+asyncpg://u@h/db?application_name=x&ssl=disable"),
        ("postgresql://u@h/db?ssl=prefer", "postgresql+asyncpg://u@h/db?ssl=prefer"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)  # fmt: skip
def test_sslmode_becomes_asyncpgs_ssl(given: str, taken: str) -> None:
    assert _url(given) == taken


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("postgresql://u@h/db?sslmode=sometimes", "sslmode must be one of disable, allow, prefer, require"),
        ("postgresql://u@h/db?sslmode=require&ssl=disable", "sslmode or ssl, not both"),
        ("postgresql://u@h/db?sslmode=verify-ca&sslrootcert=/ca.pem", "PGSSLROOTCERT=/ca.pem"),
        ("postgresql://u@h/db?sslcert=/c.pem&sslkey=/k.pem", "PGSSLCERT=/c.pem"),
    ],
)
def test_what_asyncpg_cannot_take_is_refused_saying_what_to_do(given: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _url(given)
    assert "database_url" in str(refused.value) and says in str(refused.value)
