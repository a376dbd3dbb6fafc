"""Persistence: ORM entities, sessions, migrations."""
