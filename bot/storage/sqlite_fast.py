"""One thread hop per SQLite statement instead of four.

SQLAlchemy's aiosqlite adapter opens a cursor, executes, fetches and closes it in four separate
trips to aiosqlite's thread. Here a statement and its rows travel in one trip (aiosqlite's
``Connection._execute``). Everything else is SQLAlchemy's own adapter. Applied per connection at
connect time, and only when the classes look as expected; otherwise nothing changes.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
from typing import Any

log = logging.getLogger(__name__)

try:
    from sqlalchemy.dialects.sqlite.aiosqlite import (
        AsyncAdapt_aiosqlite_connection,
        AsyncAdapt_aiosqlite_cursor,
    )
    from sqlalchemy.util import EMPTY_DICT

    _AVAILABLE = hasattr(AsyncAdapt_aiosqlite_cursor, "_execute_async")
except ImportError:  # pragma: no cover - a different SQLAlchemy
    _AVAILABLE = False


class _Result:
    """What a finished statement leaves behind (stands in for the aiosqlite cursor)."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self) -> None:
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def close(self) -> None:
        return None


def _run(raw: sqlite3.Connection, op: str, params: Any, many: bool) -> tuple[Any, int, Any, Any]:
    cur = raw.cursor()
    try:
        if many:
            cur.executemany(op, params)
        elif params is None:
            cur.execute(op)
        else:
            cur.execute(op, params)
        rows = cur.fetchall() if cur.description else None
        return cur.description, cur.rowcount, cur.lastrowid, rows
    finally:
        cur.close()


if _AVAILABLE:

    class FastCursor(AsyncAdapt_aiosqlite_cursor):
        __slots__ = ()

        def __init__(self, adapt_connection: Any) -> None:
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection
            self._cursor = _Result()  # type: ignore[assignment]
            self._soft_closed_memoized = EMPTY_DICT
            self._rows = collections.deque()

        async def _go(self, operation: Any, parameters: Any, many: bool) -> None:
            conn = self._connection
            async with self._adapt_connection._execute_mutex:
                desc, rowcount, lastrowid, rows = await conn._execute(
                    _run, conn._conn, operation, parameters, many
                )
            res: Any = self._cursor
            res.description, res.rowcount, res.lastrowid = desc, rowcount, lastrowid
            if rows is not None:
                self._rows = collections.deque(rows)

        async def _execute_async(self, operation: Any, parameters: Any) -> Any:
            await self._go(operation, parameters, False)

        async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
            await self._go(operation, seq_of_parameters, True)

    class FastConnection(AsyncAdapt_aiosqlite_connection):
        __slots__ = ()
        _cursor_cls = FastCursor


def speed_up(dbapi_connection: Any) -> None:
    """Switch one pooled aiosqlite connection to single-trip statements."""
    if _AVAILABLE and type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = FastConnection
