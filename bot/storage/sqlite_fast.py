"""SQLite statements run on the event loop, not through aiosqlite's thread.

SQLAlchemy's aiosqlite adapter sends every statement to aiosqlite's thread and back: four trips
a statement (cursor, execute, fetch, close), each a thread wake-up on both sides and a turn of
the event loop. For a local SQLite file a statement takes microseconds, far less than the trip:
a chat turn spent most of its time travelling, and while a turn held the write lock every trip
let other requests' work run first (measured: a statement 230 us -> 95 us, bench/
chat_throughput.py). Here a statement runs where it is called, on the raw ``sqlite3`` connection
that aiosqlite opened. Everything else is SQLAlchemy's own adapter.

A locked database (another process writing) must not stall the event loop in SQLite's busy
handler: the connection's ``busy_timeout`` is 0 and a statement refused with "database is
locked" is tried again after an asynchronous sleep, for up to :data:`BUSY_TIMEOUT` seconds.

Applied per connection at connect time, and only when the classes look as expected; otherwise
nothing changes (and the busy timeout stays SQLite's own). This subclasses private classes of
SQLAlchemy's: pyproject.toml bounds SQLAlchemy to the versions it was tested with, and
tests/bot/storage/test_sqlite_fast.py fails when an installed version in that range no longer
fits (rather than the server silently getting slower).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import time
from typing import Any, cast

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 30.0  # seconds a statement waits for another writer, as busy_timeout did
_FIRST_WAIT, _MAX_WAIT = 0.001, 0.05

try:
    from sqlalchemy.dialects.sqlite.aiosqlite import (
        AsyncAdapt_aiosqlite_connection,
        AsyncAdapt_aiosqlite_cursor,
    )
    from sqlalchemy.util import EMPTY_DICT
    from sqlalchemy.util.concurrency import await_

    _AVAILABLE = hasattr(AsyncAdapt_aiosqlite_cursor, "_execute_async") and hasattr(
        AsyncAdapt_aiosqlite_connection, "_handle_exception"
    )
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


def _busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e)
    return "database is locked" in msg or "database is busy" in msg


async def _retrying(call: Any, *args: Any) -> Any:
    """``call(*args)``; while SQLite says the database is locked, sleep (asynchronously) and
    try again, up to :data:`BUSY_TIMEOUT`."""
    deadline = 0.0
    wait = _FIRST_WAIT
    while True:
        try:
            return call(*args)
        except sqlite3.OperationalError as e:
            if not _busy(e):
                raise
            now = time.monotonic()
            deadline = deadline or now + BUSY_TIMEOUT
            if now >= deadline:
                raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, _MAX_WAIT)


if _AVAILABLE:

    class FastCursor(AsyncAdapt_aiosqlite_cursor):
        """SQLAlchemy's cursor calls ``await_(self._execute_async(...))``: the coroutine here
        finishes without suspending (unless the database is locked), so the event loop does
        not turn in between."""

        __slots__ = ()

        def __init__(self, adapt_connection: Any) -> None:
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection
            self._cursor = cast(Any, _Result())
            self._soft_closed_memoized = EMPTY_DICT
            self._rows = collections.deque()

        async def _go(self, operation: Any, parameters: Any, many: bool) -> None:
            desc, rowcount, lastrowid, rows = await _retrying(
                _run, self._connection._conn, operation, parameters, many
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

        async def _end(self, how: str) -> None:
            if self._connection._connection is not None:
                await _retrying(getattr(self._connection._conn, how))

        def commit(self) -> None:
            try:
                await_(self._end("commit"))
            except Exception as error:
                self._handle_exception(error)

        def rollback(self) -> None:
            try:
                await_(self._end("rollback"))
            except Exception as error:
                self._handle_exception(error)


def speed_up(dbapi_connection: Any) -> bool:
    """Run one pooled aiosqlite connection's statements on the event loop. Returns whether it
    did (then the caller must set ``busy_timeout`` to 0: waits happen here, asynchronously)."""
    if _AVAILABLE and type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = FastConnection
        return True
    return False
