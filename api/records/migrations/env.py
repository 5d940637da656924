"""Alembic environment: run only through :func:`warmpool.api.records.db.migrate`, which
hands over an open connection (``config.attributes["connection"]``)."""

from __future__ import annotations

from alembic import context

from warmpool.api.records.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
