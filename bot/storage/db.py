"""The database handle: engine, sessions, migrations, and clear errors for bad locations."""

from __future__ import annotations

import asyncio
import logging
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
            # statements run on the event loop (sqlite_fast): the connection is opened in
            # aiosqlite's thread and used from the loop's
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
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
        async with self._write_lock, self.sessionmaker() as s, s.begin():
            yield s

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
        await self.engine.dispose()


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
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(e: BaseException) -> str:
    msg = str(getattr(e, "orig", None) or e).strip().splitlines()
    return msg[0] if msg else e.__class__.__name__
