"""The migrations build exactly the schema the models describe (no drift either way)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import bot.storage.registry  # noqa: F401  (every feature's tables)
from bot.storage.db import Database
from bot.storage.models import Base


async def test_migrated_database_matches_the_models(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    await db.dispose()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
