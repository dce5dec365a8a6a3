"""The embedded SQLite database: statements on the event loop, other writers waited for."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.clock import utcnow
from bot.storage import sqlite_fast
from bot.storage.db import Database
from bot.storage.models import Contact

HOLD = 0.6  # seconds the other process keeps the write lock


async def test_another_writer_delays_a_turn_without_freezing_the_event_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    # another process (a CLI command, a second server) holds the write lock for a while
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
            f"time.sleep({HOLD}); c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.to_thread(holder.stdout.readline) == "locked\n"
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:  # what other visitors' requests need: the loop turning
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        started = time.monotonic()
        async with db.session() as s:
            s.add(Contact(created_at=utcnow(), updated_at=utcnow(), attributes={}))
        waited = time.monotonic() - started
        stop.set()
        await t
        assert waited >= HOLD * 0.5  # it did wait for the other writer ...
        assert ticks >= 10  # ... while the event loop went on serving others
        async with db.session() as s:
            assert await s.scalar(select(func.count()).select_from(Contact)) == 1
    finally:
        holder.wait(10)
        if holder.stdout:
            holder.stdout.close()
        await db.dispose()


async def test_a_lock_held_past_the_timeout_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_fast, "BUSY_TIMEOUT", 0.2)
    path = tmp_path / "shop.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception, match="database is locked"):
            async with db.session() as s:
                s.add(Contact(created_at=utcnow(), updated_at=utcnow(), attributes={}))
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with db.session() as s:  # the connection is usable again afterwards
        s.add(Contact(created_at=utcnow(), updated_at=utcnow(), attributes={}))
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Contact)) == 1
    await db.dispose()


async def test_the_database_file_keeps_up_while_the_server_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write-ahead log is copied into the database file in the background (a copy of the
    .db file, a backup, has the data), never inside a commit on the event loop."""
    from bot.storage import db as db_module

    monkeypatch.setattr(db_module, "CHECKPOINT_INTERVAL", 0.0)
    path = tmp_path / "shop.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    start = path.stat().st_size
    for i in range(40):
        async with db.session() as s:
            s.add_all(
                Contact(display_name=f"c{i}-{j}" * 20, created_at=utcnow(), updated_at=utcnow())
                for j in range(20)
            )
        await asyncio.sleep(0.01)  # the checkpoint runs in a thread meanwhile
    if db._checkpoint is not None:
        await db._checkpoint
    # the pool's connection is still open: without the checkpoints the rows would all be in
    # the log, the database file as large as it started
    grown = path.stat().st_size
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())  # the file alone, without its log
    with sqlite3.connect(copy) as c:
        copied = c.execute("SELECT count(*) FROM contacts").fetchone()[0]
    await db.dispose()
    assert grown > start
    assert copied >= 700  # all but the last few transactions are in the file itself
