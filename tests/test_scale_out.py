"""Two ``concierge run`` processes on one PostgreSQL database (scale-out, design §6).

They share the outbox without sending anything twice (claims with ``FOR UPDATE SKIP LOCKED``)
and share the platforms' limits: together they keep to Telegram's 30 messages a second and
about one a second per chat, as one process does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from bot.settings import Settings
from tests.auxil.process import REPO, ConciergeProcess
from tests.auxil.warm import warm_nlu
from tests.fakes.telegram_api import FakeTelegram
from tests.test_run_delivery import most_in_a_second, queue


def processes(url: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("concierge_processes "):
            return float(line.split()[1])
    return 0.0


def test_two_processes_share_the_outbox_and_the_limits(
    telegram: FakeTelegram,
    pg_url: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    settings = warm_nlu(make_settings(pg_url))
    env = {
        "CONCIERGE_DATABASE_URL": pg_url,
        "CONCIERGE_CONTENT_DIR": str(REPO),
        "CONCIERGE_MODEL_DIR": str(settings.resolved_model_dir),
        "CONCIERGE_SECRET_KEY": "test-secret",
        "CONCIERGE_TELEGRAM_TOKEN": telegram.token,
        "CONCIERGE_TELEGRAM_API_URL": telegram.url,
        "CONCIERGE_DELIVERY_POLL_INTERVAL": "0.05",
        "CONCIERGE_LOG_LEVEL": "WARNING",
    }
    a = ConciergeProcess(env, tmp_path / "a.log").start()
    b = ConciergeProcess(env, tmp_path / "b.log").start()
    try:
        deadline = time.monotonic() + 20
        while not (processes(a.url) == 2 and processes(b.url) == 2):
            assert time.monotonic() < deadline, "the processes did not see each other"
            time.sleep(0.1)
        queue(pg_url, "telegram", [(str(3000 + i), f"hi {i}") for i in range(120)])
        queue(pg_url, "telegram", [("88", f"part {i}") for i in range(6)])
        calls = telegram.wait_for("sendMessage", 126, timeout=40)
        texts = Counter(str(c.params["text"]) for c in calls)
        assert len(texts) == 126, "messages were lost"
        assert max(texts.values()) == 1, "a message was sent twice"
        assert most_in_a_second([c.at for c in calls]) <= 30
        chat = [c.at for c in calls if str(c.params["chat_id"]) == "88"]
        assert most_in_a_second(chat) <= 4
    finally:
        a.stop()
        b.stop()
    # one process alone: back to the whole limit
    c = ConciergeProcess(env, tmp_path / "c.log").start()
    try:
        assert processes(c.url) == 1
    finally:
        c.stop()


def test_web_chat_across_two_processes_every_reply_reaches_its_socket(
    pg_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Visitors dealt to two processes (as a round-robin proxy does): each reply is delivered
    by whichever worker claims it, and reaches the visitor's socket on the other process over
    PostgreSQL LISTEN/NOTIFY."""
    import asyncio
    import json

    import websockets

    settings = warm_nlu(make_settings(pg_url))
    env = {
        "CONCIERGE_DATABASE_URL": pg_url,
        "CONCIERGE_CONTENT_DIR": str(REPO),
        "CONCIERGE_MODEL_DIR": str(settings.resolved_model_dir),
        "CONCIERGE_SECRET_KEY": "test-secret",
        "CONCIERGE_DELIVERY_POLL_INTERVAL": "0.05",
        "CONCIERGE_LOG_LEVEL": "WARNING",
    }
    a = ConciergeProcess(env, tmp_path / "a.log").start()
    b = ConciergeProcess(env, tmp_path / "b.log").start()

    async def visitor(url: str, i: int) -> int:
        answers = 0
        async with websockets.connect(url.replace("http://", "ws://") + "/ws/chat") as ws:
            while json.loads(await ws.recv())["type"] != "history":
                pass
            for j in range(4):
                await ws.send(
                    json.dumps(
                        {
                            "type": "message",
                            "text": "Do you ship to Austria?",
                            "client_id": f"{i}-{j}",
                        }
                    )
                )
                while True:
                    f = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if f["type"] == "message" and f["sender"] != "user":
                        answers += 1
                        break
        return answers

    async def crossed() -> int:
        from sqlalchemy import func, select

        from bot.storage.db import Database
        from bot.storage.models import OutboxMessage

        db = Database(pg_url)
        try:
            async with db.session() as s:
                q = select(func.count()).where(
                    OutboxMessage.channel == "web",
                    OutboxMessage.status == "sent",
                    OutboxMessage.platform_message_id.like("%:0"),  # no local socket
                )
                return int((await s.execute(q)).scalar_one())
        finally:
            await db.dispose()

    async def go() -> list[int]:
        return await asyncio.gather(*(visitor((a, b)[i % 2].url, i) for i in range(12)))

    try:
        assert asyncio.run(go()) == [4] * 12
        assert asyncio.run(crossed()) > 0, "no reply was delivered by the other process"
    finally:
        a.stop()
        b.stop()
