"""Live pushes across processes: PostgreSQL LISTEN/NOTIFY (design §6).

With several app processes behind a load balancer, the delivery worker of one process may send a
web message to a visitor whose socket is open on another. Every process listens on one channel
and pushes what it hears to its own sockets. On SQLite (one process) this is not needed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.storage.db import Database
from bot.storage.models import Message

log = logging.getLogger(__name__)

CHANNEL = "concierge_web"
MAX_PAYLOAD = 7900  # PostgreSQL's NOTIFY payload limit is 8000 bytes


class PgFanout:
    def __init__(self, db: Database, hub: Any) -> None:
        self.db = db
        self.hub = hub
        self.origin = uuid.uuid4().hex[:12]
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one asyncpg connection runs one statement at a time

    async def start(self) -> None:
        import asyncpg

        url = make_url(self.db.url).set(drivername="postgresql")
        self._conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        await self._conn.add_listener(CHANNEL, self._heard)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def publish(self, address: str, frame: dict[str, Any]) -> None:
        if self._conn is None:
            return
        payload = json.dumps(
            {"o": self.origin, "a": address, "f": frame}, ensure_ascii=False, separators=(",", ":")
        )
        if len(payload.encode()) > MAX_PAYLOAD:  # too big to carry: listeners load it
            payload = json.dumps({"o": self.origin, "a": address, "id": frame.get("id")})
        async with self._lock:
            await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        asyncio.get_running_loop().create_task(self._deliver(payload))

    async def _deliver(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            if data.get("o") == self.origin:
                return
            address = data["a"]
            if not self.hub.connected(address):
                return
            frame = data.get("f")
            if frame is None:
                from channels.web.chat import message_frame

                async with self.db.session() as s:
                    m = (
                        await s.execute(select(Message).where(Message.id == data.get("id")))
                    ).scalar_one_or_none()
                if m is None:
                    return
                frame = message_frame(m)
            await self.hub.push(address, frame)
        except Exception:
            log.exception("web fan-out failed for %r", payload[:200])
