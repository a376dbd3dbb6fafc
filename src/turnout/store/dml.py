"""Dialect-specific INSERT constructs (``ON CONFLICT`` exists on PostgreSQL and SQLite only)."""

from __future__ import annotations

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert


def conflict_insert(table: Table, dialect: str) -> Insert:
    """An INSERT offering ``on_conflict_do_*`` on PostgreSQL and SQLite; a plain one elsewhere."""
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    return insert(table)
