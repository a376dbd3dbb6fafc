"""A database URL written as libpq and other tools write it gets what Turnout's async drivers take:
``postgresql://...?sslmode=require`` failed at connect with asyncpg's "connect() got an unexpected
keyword argument 'sslmode'"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from turnout.config import Settings
from turnout.database_url import asyncpg_connect_args


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


# libpq parameters beyond sslmode: SQLAlchemy passed each to asyncpg.connect as a keyword, and the
# gateway died at its first connection with "connect() got an unexpected keyword argument
# 'connect_timeout'" (or, for numbers asyncpg does take, "'<' not supported between 'str' and 'int'")


@pytest.mark.parametrize(
    ("given", "url", "connect_args"),
    [
        ("postgresql://u@h/db?connect_timeout=10", "postgresql+asyncpg://u@h/db", {"timeout": 10.0}),
        ("postgresql://u@h/db?application_name=turnout", "postgresql+asyncpg://u@h/db",
         {"server_settings": {"application_name": "turnout"}}),
        ("postgresql://u@h/db?fallback_application_name=turnout", "postgresql+asyncpg://u@h/db",
         {"server_settings": {"application_name": "turnout"}}),
        ("postgresql://u@h/db?options=-c%20statement_timeout%3D5000%20-clock_timeout%3D1s%20--search-path%3Da%5C%20b",
         "postgresql+asyncpg://u@h/db",
         {"server_settings": {"statement_timeout": "5000", "lock_timeout": "1s", "search_path": "a b"}}),
        ("postgresql://u@h/db?application_name=a&options=-c%20application_name%3Db%20-c%20work_mem%3D8MB",
         "postgresql+asyncpg://u@h/db", {"server_settings": {"application_name": "a", "work_mem": "8MB"}}),
        ("postgresql://u@h/db?target_session_attrs=read-write&sslmode=require",
         "postgresql+asyncpg://u@h/db?ssl=require&target_session_attrs=read-write", {}),
        ("postgresql://u@h/db?statement_cache_size=0&prepared_statement_cache_size=0&command_timeout=30",
         "postgresql+asyncpg://u@h/db?prepared_statement_cache_size=0",
         {"statement_cache_size": 0, "command_timeout": 30.0}),
        ("postgresql://u@h/db?sslnegotiation=direct&sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require",
         {"direct_tls": True}),
        ("postgresql://u@/?host=/var/run/postgresql&dbname=app&client_encoding=UTF8",
         "postgresql+asyncpg://u@/app?host=%2Fvar%2Frun%2Fpostgresql", {}),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db", {}),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db", {}),
    ],
)  # fmt: skip
def test_libpq_parameters_become_what_asyncpg_takes(
    given: str, url: str, connect_args: dict[str, object]
) -> None:
    assert asyncpg_connect_args(_url(given)) == (url, connect_args)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("keepalives=1", "asyncpg takes no keepalives; remove it from TURNOUT_DATABASE_URL"),
        ("keepalives_idle=30", "asyncpg takes no keepalives_idle; remove it from TURNOUT_DATABASE_URL"),
        ("gssencmode=disable", "asyncpg takes no gssencmode; remove it from TURNOUT_DATABASE_URL"),
        ("colour=blue", "asyncpg takes no colour; remove it from TURNOUT_DATABASE_URL"),
        ("connect_timeout=abc", "connect_timeout must be a number of seconds above 0, not 'abc'"),
        ("connect_timeout=0", "connect_timeout must be a number of seconds above 0, not '0'"),
        ("statement_cache_size=-1", "statement_cache_size must be a whole number from 0, not '-1'"),
        ("connect_timeout=5&timeout=5", "give connect_timeout or timeout, not both"),
        ("options=-B%2010", "options takes only -c name=value settings here, not '-B'"),
        ("client_encoding=LATIN1", "asyncpg speaks only UTF8; remove client_encoding=LATIN1"),
        ("target_session_attrs=writable", "target_session_attrs must be one of any, primary"),
        ("requiressl=1", "asyncpg takes no requiressl; use sslmode=require instead"),
        ("ssl_min_protocol_version=TLSv1.3", "PGSSLMINPROTOCOLVERSION=TLSv1.3"),
        ("application_name=a&application_name=b", "give application_name once"),
        ("dbname=other", "give the database in the path or as dbname, not both"),
        ("ssl=sometimes", "ssl must be one of disable, allow, prefer, require"),
        ("record_class=x", "asyncpg takes no record_class; remove it from TURNOUT_DATABASE_URL"),
    ],
)  # fmt: skip
def test_a_parameter_asyncpg_cannot_take_is_refused_at_start_up_naming_it(query: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _url(f"postgresql://u@h/db?{query}")
    assert "database_url" in str(refused.value) and says in str(refused.value)
