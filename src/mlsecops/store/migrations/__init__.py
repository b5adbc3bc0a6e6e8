"""Alembic migrations of the workspace schema (run by ``store.workspace``, never by hand)."""
