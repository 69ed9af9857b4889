"""Alembic environment: migrations run on the connection handed in by ``db.engine``."""

from __future__ import annotations

from alembic import context

from visionatrix.db.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through visionatrix.db.engine.upgrade_to_head")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
