"""Alembic environment: runs migrations on the connection that ``store.workspace`` hands over."""

from __future__ import annotations

from alembic import context

from mlsecops.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - we never run alembic from its own CLI
    raise RuntimeError("mlsecops migrations run through mlsecops.store, which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
