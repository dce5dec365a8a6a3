"""``bot.storage.dialect``: the one place that knows SQLite from PostgreSQL (each test runs on
both through the ``db`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, func, select

from bot.storage import dialect
from bot.storage.db import Database
from bot.storage.models import Contact
from bot.storage.seen import SeenDelivery

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
CONTACTS = cast(Table, Contact.__table__)


async def test_the_session_knows_its_dialect(db: Database) -> None:
    async with db.session() as s:
        assert dialect.is_postgres(s) == db.is_postgres
        assert dialect.dialect_of(s) == ("postgresql" if db.is_postgres else "sqlite")


async def test_insert_ignoring_skips_a_key_there_already_and_returns_the_rest(db: Database) -> None:
    table = cast(Table, SeenDelivery.__table__)
    stmt = dialect.insert_ignoring(
        table, ("channel", "delivery_id"), ("delivery_id",), db.is_postgres
    )
    assert stmt is dialect.insert_ignoring(  # built once per dialect
        table, ("channel", "delivery_id"), ("delivery_id",), db.is_postgres
    )
    rows = [{"channel": "slack", "delivery_id": d, "seen_at": NOW} for d in ("a", "b")]
    async with db.session() as s:
        first = set((await s.execute(stmt, rows)).scalars())
    async with db.session() as s:
        again = set(
            (
                await s.execute(
                    stmt, [*rows, {"channel": "slack", "delivery_id": "c", "seen_at": NOW}]
                )
            ).scalars()
        )
        count = (await s.execute(select(func.count()).select_from(table))).scalar()
    assert first == {"a", "b"} and again == {"c"} and count == 3


async def test_insert_returning_ids_gives_each_row_its_id_in_order(db: Database) -> None:
    for n in (1, 3, dialect.PREFETCH_IDS_FROM + 1):  # one, a few, many (ids taken first)
        rows = [
            {"display_name": f"n{n}-{i}", "created_at": NOW, "updated_at": NOW, "attributes": {}}
            for i in range(n)
        ]
        async with db.session() as s:
            ids = await dialect.insert_returning_ids(s, CONTACTS, rows)
        assert len(ids) == n == len(set(ids))
        async with db.session() as s:
            q = select(Contact.id, Contact.display_name).where(Contact.id.in_(ids))
            names = {cid: name for cid, name in await s.execute(q)}
        assert [names[i] for i in ids] == [r["display_name"] for r in rows]
