"""The database handle: engine, sessions, migrations, and clear errors for bad locations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.storage.sqlite_fast import speed_up

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# SQLite: how often (at most) the write-ahead log is copied into the database file, in a
# thread of its own; the statements on the event loop never checkpoint themselves (see
# _sqlite_pragmas)
CHECKPOINT_INTERVAL = 1.0


class DatabaseError(Exception):
    """The database cannot be used: a one-line reason for a person to act on."""


def _check_sqlite_location(url: str) -> None:
    u = make_url(url)
    db = u.database
    if not db or db == ":memory:":
        return
    path = Path(db)
    parent = path.resolve().parent
    if not parent.exists():
        raise DatabaseError(f"database folder {parent} does not exist (CONCIERGE_DATABASE_URL)")
    if path.exists() and path.is_dir():
        raise DatabaseError(f"database path {path} is a folder, not a file")
    import os

    if path.exists() and not os.access(path, os.W_OK):
        raise DatabaseError(f"database file {path} is not writable")
    if not path.exists() and not os.access(parent, os.W_OK):
        raise DatabaseError(f"cannot create database file in {parent}: folder is not writable")


def _create_private(url: str) -> None:
    """A new SQLite file is created readable by its owner only (0600); SQLite gives its
    -wal and -shm files the database file's mode. An existing file is left as it is."""
    db = make_url(url).database
    if not db or db == ":memory:" or db.startswith("file:"):
        return
    import os

    try:
        fd = os.open(db, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Database:
    """One per process. ``async with db.session() as s:`` gives a session in a transaction."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _check_sqlite_location(url)
            _create_private(url)
            # statements run on the event loop (sqlite_fast): the connection is opened in
            # aiosqlite's thread and used from the loop's
            # (a batch of n turns sends statements whose text depends on n: room for them all in
            # the connection's cache of prepared statements)
            kwargs["connect_args"] = {
                "timeout": 30,
                "check_same_thread": False,
                "cached_statements": 512,
            }
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        db_file = make_url(url).database if self.is_sqlite else None
        self._sqlite_file = db_file if db_file and db_file != ":memory:" else None
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpointed_at = 0.0

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        SQLite has one writer at a time: transactions of this process queue on an asyncio lock
        instead of spinning in SQLite's busy handler (which sleeps up to 100 ms a round).
        """
        if self._write_lock is None:
            async with self.sessionmaker() as s, s.begin():
                yield s
            return
        async with self._write_lock:
            s = self.sessionmaker()
            try:
                async with s.begin():
                    yield s
            finally:
                # not AsyncSession's own exit: that closes in a task of its own (so that a
                # cancellation cannot cut a close short), which costs turns of the event loop
                # while the write lock is held: every request waiting there ran first (a chat
                # turn alone took 20 ms instead of 2). Closing a SQLite session never suspends.
                await s.close()
        self._maybe_checkpoint()

    def _maybe_checkpoint(self) -> None:
        """After a commit: copy the write-ahead log into the database file in a thread, at
        most every :data:`CHECKPOINT_INTERVAL` seconds. SQLite's own checkpoint runs inside
        the commit that fills the log, on the event loop: under load it stalled every chat for
        100-200 ms every few seconds (bench/chat_throughput.py p99)."""
        if self._sqlite_file is None or (self._checkpoint and not self._checkpoint.done()):
            return
        now = time.monotonic()
        if now - self._checkpointed_at < CHECKPOINT_INTERVAL:
            return
        self._checkpointed_at = now
        loop = asyncio.get_running_loop()
        self._checkpoint = loop.run_in_executor(None, _checkpoint, self._sqlite_file)

    async def check(self) -> None:
        """Connect once, turning driver errors into one clear line."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError) as e:
            raise DatabaseError(f"cannot open database {self.safe_url}: {_first_line(e)}") from e

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    async def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``."""
        await self.check()
        async with self.engine.begin() as conn:
            await conn.run_sync(_run_upgrade, self.url, revision)

    async def dispose(self) -> None:
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])
            self._checkpoint = None
        await self.engine.dispose()


def _checkpoint(path: str) -> None:
    """A passive checkpoint on a connection of its own: it waits for no reader or writer."""
    try:
        conn = sqlite3.connect(path, timeout=0, check_same_thread=False)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:  # busy, or the file went away: the next one catches up
        log.debug("checkpoint of %s skipped: %s", path, e)


def _run_upgrade(conn: Connection, url: str, revision: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite opens transactions lazily, only before a write: a transaction's reads would see
    # no snapshot of their own. Take over: every transaction is BEGIN IMMEDIATE (below), so
    # writers in other processes wait in the busy handler instead of interleaving.
    dbapi_conn.isolation_level = None
    on_loop = speed_up(dbapi_conn)
    cur = dbapi_conn.cursor()
    # on the event loop a lock is waited for asynchronously (sqlite_fast), not in SQLite
    cur.execute(f"PRAGMA busy_timeout={0 if on_loop else 30000}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    if on_loop:  # the log is checkpointed in a thread (Database._maybe_checkpoint)
        cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(e: BaseException) -> str:
    msg = str(getattr(e, "orig", None) or e).strip().splitlines()
    return msg[0] if msg else e.__class__.__name__
