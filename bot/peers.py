"""How many ``concierge run`` processes share one PostgreSQL database, so that they share the
platforms' send limits (design §6: scale-out).

Each process holds a session advisory lock of its own (one of :data:`SLOTS`), on a connection
of its own; PostgreSQL releases it when the process ends or dies, so counting the held locks
counts the live processes, with no table and no clean-up. Each process then sends at 1/n of a
channel's limits (overall and per chat), so together they keep to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from bot.storage.db import Database

log = logging.getLogger(__name__)

KEY = 0x436F6E63  # advisory lock class of the process slots ('Conc')
SLOTS = 64
INTERVAL = 2.0  # seconds between counts

_COUNT = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND classid = $1::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class Peers:
    def __init__(self, db: Database, on_change: Callable[[int], None]) -> None:
        self.db = db
        self.on_change = on_change
        self.count = 1
        self.slot: int | None = None
        self._conn: Any = None

    async def start(self) -> None:
        import asyncpg

        url = make_url(self.db.url).set(drivername="postgresql")
        self._conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        for slot in range(SLOTS):
            if await self._conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", KEY, slot):
                self.slot = slot
                break
        await self.refresh()

    async def refresh(self) -> None:
        if self._conn is None:
            return
        n = max(int(await self._conn.fetchval(_COUNT, KEY)), 1)
        if n != self.count:
            log.info("%d processes share the database: each sends at 1/%d of the limits", n, n)
            self.count = n
            self.on_change(n)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await self.refresh()
            except Exception as e:  # the database is away: keep the last count
                log.warning("counting the processes failed: %s", e)
                await self._reconnect()

    async def _reconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
            self._conn = None
        try:
            await self.start()
        except Exception as e:
            log.debug("peers: no connection yet (%s)", e)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # the slot's lock goes with the connection
            self._conn = None
