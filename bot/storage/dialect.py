"""The one place that knows how SQLite and PostgreSQL differ for the statements we write.

- ``INSERT ... ON CONFLICT DO NOTHING`` (idempotency keys, seen deliveries): both dialects
  have it, but SQLAlchemy builds it with each dialect's own ``insert()``: :func:`insert_for`.
- Many rows whose new ids the caller needs, in their order: PostgreSQL takes them from the
  table's sequence first (:func:`next_ids`); SQLite, whose write lock a transaction here holds
  from its ``BEGIN IMMEDIATE``, knows them up front (the largest plus one, SQLite's own choice
  for a plain integer key): :func:`insert_returning_ids`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Result, Table, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

POSTGRESQL, SQLITE = "postgresql", "sqlite"


class _Bound(Protocol):
    @property
    def bind(self) -> Any: ...


def dialect_of(session: _Bound) -> str:
    """``"postgresql"`` or ``"sqlite"`` (a session without a bind counts as SQLite)."""
    bind = session.bind
    return str(bind.dialect.name) if bind is not None else SQLITE


def is_postgres(session: _Bound) -> bool:
    return dialect_of(session) == POSTGRESQL


def insert_for(session_or_postgres: _Bound | bool) -> Any:
    """The dialect's ``insert()`` (it has ``on_conflict_do_nothing``/``_do_update``)."""
    pg = (
        session_or_postgres
        if isinstance(session_or_postgres, bool)
        else is_postgres(session_or_postgres)
    )
    return pg_insert if pg else sqlite_insert


@cache
def insert_ignoring(
    table: Table, keys: tuple[str, ...], returning: tuple[str, ...], pg: bool
) -> Any:
    """``INSERT INTO table ... ON CONFLICT (keys) DO NOTHING [RETURNING ...]``, built once per
    dialect (a statement's construction costs more than its cached compilation). A row whose
    key is there already returns nothing."""
    stmt = insert_for(pg)(table).on_conflict_do_nothing(index_elements=list(keys))
    if returning:
        stmt = stmt.returning(*(table.c[c] for c in returning))
    return stmt


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (both drivers report it; 0 if one did not)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


async def next_ids(s: AsyncSession, table: str, n: int) -> list[int]:
    """``n`` ids from the table's sequence (PostgreSQL), in one statement."""
    seq = func.pg_get_serial_sequence(table, "id")
    q = select(func.nextval(seq)).select_from(func.generate_series(1, n))
    return [int(i) for i in (await s.execute(q)).scalars()]


@cache
def _statements(table: Table) -> tuple[Any, Any, Any, Any]:
    return (
        insert(table).returning(table.c.id),
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        insert(table),
        select(func.max(table.c.id)),
    )


PREFETCH_IDS_FROM = 64
"""From this many rows PostgreSQL gets its ids first and plain INSERTs (pipelined, no
many-parameter statement to plan); fewer go in one ``INSERT ... RETURNING``."""


async def insert_returning_ids(
    s: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` into ``table`` in one statement; their new ids in the rows' order."""
    one, ordered, plain, top_id = _statements(table)
    if len(rows) == 1:
        return [(await s.execute(one, rows[0])).scalar_one()]
    if not is_postgres(s):
        # SQLAlchemy sends an ordered RETURNING to SQLite a row at a time; the next ids are
        # known instead (this transaction holds the write lock)
        top = (await s.execute(top_id)).scalar() or 0
        ids = list(range(top + 1, top + 1 + len(rows)))
    elif len(rows) >= PREFETCH_IDS_FROM:
        ids = await next_ids(s, table.name, len(rows))
    else:
        return list((await s.execute(ordered, rows)).scalars())
    await s.execute(plain, [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
    return ids
