"""``bot.storage.sqlite_fast`` patches private SQLAlchemy classes: within the SQLAlchemy versions
pyproject.toml allows it must apply, or the SQLite server silently loses half its speed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from sqlalchemy import text

from bot.storage import sqlite_fast
from bot.storage.db import Database


def test_the_installed_sqlalchemy_has_what_the_fast_path_needs() -> None:
    assert sqlite_fast._AVAILABLE, f"sqlite_fast does not fit SQLAlchemy {sqlalchemy.__version__}"


async def test_a_sqlite_connection_runs_its_statements_on_the_event_loop(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with db.session() as s:
            assert (await s.execute(text("SELECT 1"))).scalar() == 1
            raw = await (await s.connection()).get_raw_connection()
            assert isinstance(raw.dbapi_connection, sqlite_fast.FastConnection)
            assert (await s.execute(text("PRAGMA busy_timeout"))).scalar() == 0
    finally:
        await db.dispose()
