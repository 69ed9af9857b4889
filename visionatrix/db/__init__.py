"""Persistence: SQLAlchemy tables, the engine, one query module per aggregate, Alembic migrations."""
