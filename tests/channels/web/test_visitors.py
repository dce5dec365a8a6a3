"""Web visitors under abuse, against the live app on SQLite and PostgreSQL: the rate limit
holds per visitor and per IP address across reconnects, a connect alone stores nothing, and
anonymous visitors who never wrote are purged."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from sqlalchemy import func, select, update

from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Contact, Identity
from tests.conftest import LiveServer


def ws_url(server: LiveServer, **params: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return f"ws://127.0.0.1:{server.port}/ws/chat" + (f"?{q}" if q else "")


async def next_of(ws: Any, *kinds: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in kinds:
                return dict(frame)

    return await asyncio.wait_for(go(), 30)


async def send(ws: Any, text: str, client_id: str) -> str:
    """``ack`` or the error code the message got."""
    await ws.send(json.dumps({"type": "message", "text": text, "client_id": client_id}))
    while True:
        f = await next_of(ws, "ack", "error")
        if f.get("client_id") == client_id:
            return "ack" if f["type"] == "ack" else str(f["code"])


def query(url: str, stmt: Any) -> Any:
    async def go() -> Any:
        db = Database(url)
        try:
            async with db.session() as s:
                return (await s.execute(stmt)).all()
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture
def limited(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    return start_server(
        make_settings(db_url, web_rate_limit_per_minute=4, web_rate_limit_per_ip_per_minute=10)
    )


async def test_reconnecting_does_not_reset_the_rate_limit(limited: LiveServer) -> None:
    async with websockets.connect(ws_url(limited)) as ws:
        token = (await next_of(ws, "session"))["token"]
        got = [await send(ws, "hello", f"a{i}") for i in range(5)]
    assert got == ["ack"] * 4 + ["rate_limited"]
    # a new socket with the same token, and a second tab at once: the same visitor's bucket
    async with (
        websockets.connect(ws_url(limited, token=token)) as again,
        websockets.connect(ws_url(limited, token=token)) as tab,
    ):
        await next_of(again, "history")
        await next_of(tab, "history")
        assert await send(again, "hello", "b1") == "rate_limited"
        assert await send(tab, "hello", "b2") == "rate_limited"


async def test_new_visitors_from_one_address_share_its_limit(limited: LiveServer) -> None:
    """Dropping the token makes a new visitor, not a new allowance: the address's bucket
    (10 a minute) holds; another address is not affected."""
    got = []
    for n in range(4):
        headers = {"X-Forwarded-For": "203.0.113.7"}
        async with websockets.connect(ws_url(limited), additional_headers=headers) as ws:
            await next_of(ws, "history")
            got += [await send(ws, "hello", f"v{n}-{i}") for i in range(3)]
    assert got.count("ack") == 10 and got[-2:] == ["rate_limited", "rate_limited"]
    headers = {"X-Forwarded-For": "198.51.100.9"}
    async with websockets.connect(ws_url(limited), additional_headers=headers) as ws:
        await next_of(ws, "history")
        assert await send(ws, "hello", "other") == "ack"


async def test_a_connect_alone_stores_nobody(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    server = start_server(make_settings(db_url))
    for _ in range(20):
        async with websockets.connect(ws_url(server)) as ws:
            await next_of(ws, "history")
    count = select(func.count()).select_from(Contact)
    assert await asyncio.to_thread(query, db_url, count) == [(0,)]
    assert await asyncio.to_thread(query, db_url, select(func.count(Identity.id))) == [(0,)]
    async with websockets.connect(ws_url(server)) as ws:
        await next_of(ws, "history")
        assert await send(ws, "hello", "first") == "ack"
    assert await asyncio.to_thread(query, db_url, count) == [(1,)]


def test_stale_anonymous_visitors_are_purged(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    """Visitors stored on connect by earlier versions (or by any path) who never wrote go
    after CONCIERGE_WEB_ANONYMOUS_RETENTION_DAYS; everyone else stays."""
    old = datetime.now(UTC) - timedelta(days=40)
    recent = datetime.now(UTC) - timedelta(days=5)

    async def seed() -> dict[str, int]:
        db = Database(db_url)
        ids: dict[str, int] = {}
        try:
            async with db.session() as s:
                for name, channel, when, user in (
                    ("stale", "web", old, None),
                    ("stale2", "web", old, None),
                    ("recent", "web", recent, None),
                    ("telegram", "telegram", old, None),
                    ("customer", "web", old, "cust-1"),
                ):
                    c = Contact(
                        user_id=user,
                        created_at=when,
                        updated_at=when,
                        last_seen_at=when,
                        attributes={},
                    )
                    s.add(c)
                    await s.flush()
                    s.add(
                        Identity(
                            contact_id=c.id,
                            channel=channel,
                            external_id=f"x-{name}",
                            address=f"x-{name}",
                            created_at=when,
                            last_seen_at=when,
                        )
                    )
                    ids[name] = c.id
        finally:
            await db.dispose()
        return ids

    ids = asyncio.run(seed())
    server = start_server(
        make_settings(db_url, web_anonymous_retention_days=30, web_purge_interval_seconds=0.2)
    )

    async def writer() -> int:
        """An old anonymous visitor who did write (their contact dated back 40 days)."""
        async with websockets.connect(ws_url(server)) as ws:
            vid = (await next_of(ws, "session"))["visitor_id"]
            assert await send(ws, "hello", "w") == "ack"
        db = Database(db_url)
        try:
            async with db.session() as s:
                cid = (
                    await s.execute(select(Identity.contact_id).where(Identity.external_id == vid))
                ).scalar_one()
                await s.execute(
                    update(Contact)
                    .where(Contact.id == cid)
                    .values(created_at=old, last_seen_at=old)
                )
        finally:
            await db.dispose()
        return int(cid)

    ids["writer"] = asyncio.run(writer())
    deadline = time.monotonic() + 30
    left: set[int] = set()
    while time.monotonic() < deadline:
        left = {r[0] for r in query(db_url, select(Contact.id))}
        if ids["stale"] not in left and ids["stale2"] not in left:
            break
        time.sleep(0.1)
    assert ids["stale"] not in left and ids["stale2"] not in left
    assert {ids["recent"], ids["telegram"], ids["customer"], ids["writer"]} <= left
    gone = [ids["stale"], ids["stale2"]]
    assert query(db_url, select(Identity.id).where(Identity.contact_id.in_(gone))) == []
