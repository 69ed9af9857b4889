"""Alembic head matches the models; migrations apply on an empty SQLite and PostgreSQL database."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from visionatrix.config import _async_url
from visionatrix.db.engine import create_engine, upgrade_to_head
from visionatrix.db.tables import Base


def test_head_matches_the_models(db_url: str) -> None:
    async def diff() -> list[object]:
        engine = create_engine(_async_url(db_url))
        try:
            await upgrade_to_head(engine)
            await upgrade_to_head(engine)  # idempotent: a restart applies nothing twice
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": False}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []
