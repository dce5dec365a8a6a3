"""Delivery as ``concierge run`` does it: the app factory and runtime the command builds, under
uvicorn, with Telegram and Slack configured against the fake platform servers over real HTTP.

What a person (and the platform) notices: the platforms' send limits hold (30 a second overall
for Telegram, about one a second per chat after a short burst), a 429 pauses the whole channel
for its ``retry_after`` and sending resumes at the limit rate, not in a burst.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bot.clock import utcnow
from bot.engine.writer import Reply, write
from bot.settings import Settings
from bot.storage.db import Database
from bot.types import Outbound
from tests.auxil.warm import warm_nlu
from tests.conftest import LiveServer
from tests.fakes.base import Call
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram

SECRET = "signing-secret"
_keys = itertools.count()


@pytest.fixture
def product(
    telegram: FakeTelegram,
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    """The whole product with Telegram (polling) and Slack (HTTP events) configured."""
    settings = make_settings(
        db_url,
        telegram_token=telegram.token,
        telegram_api_url=telegram.url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
    )
    return start_server(warm_nlu(settings))


def queue(db_url: str, channel: str, messages: Sequence[tuple[str, str]]) -> None:
    """Write ``(address, text)`` rows to the product's outbox (as a reply or a prompt would)."""

    async def go() -> None:
        db = Database(db_url)
        try:
            async with db.session() as s:
                for address, text in messages:
                    await write(
                        s,
                        [
                            Reply(
                                channel=channel,
                                address=address,
                                message=Outbound(text=text),
                                idempotency_key=f"t{next(_keys)}",
                            )
                        ],
                        now=utcnow(),
                    )
        finally:
            await db.dispose()

    asyncio.run(go())


def most_in_a_second(stamps: Sequence[float]) -> int:
    """The most calls in any window of one second."""
    s = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(s):
        while s[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def sends(fake: Any, method: str, address_param: str, address: str | None = None) -> list[Call]:
    return [
        c
        for c in fake.calls_to(method)
        if address is None or str(c.params.get(address_param)) == address
    ]


def test_telegram_send_limits_hold_in_the_running_product(
    telegram: FakeTelegram, product: LiveServer, db_url: str
) -> None:
    """60 chats and 8 messages to one chat at once: never more than 30 a second overall, and
    the one chat gets a burst of 3, then one a second."""
    queue(db_url, "telegram", [(str(1000 + i), f"hello {i}") for i in range(60)])
    queue(db_url, "telegram", [("77", f"part {i}") for i in range(8)])
    calls = telegram.wait_for("sendMessage", 68, timeout=30)
    assert len(calls) == 68, f"{len(calls)} of 68 messages arrived"
    assert most_in_a_second([c.at for c in calls]) <= 30
    chat = sorted(c.at for c in sends(telegram, "sendMessage", "chat_id", "77"))
    assert len(chat) == 8
    assert [c.params["text"] for c in sends(telegram, "sendMessage", "chat_id", "77")] == [
        f"part {i}" for i in range(8)
    ]
    assert most_in_a_second(chat) <= 4  # a burst of 3, then one a second
    assert chat[-1] - chat[0] >= 8 - 3 - 0.2, f"8 messages in {chat[-1] - chat[0]:.2f}s"


PLATFORMS = {
    # channel: (fake fixture, send method, address parameter)
    "telegram": ("telegram", "sendMessage", "chat_id"),
    "slack": ("slack", "chat.postMessage", "channel"),
}


@pytest.mark.parametrize("channel", sorted(PLATFORMS))
def test_a_429_pauses_the_whole_channel_then_sending_resumes_at_the_limit_rate(
    channel: str, product: LiveServer, db_url: str, request: pytest.FixtureRequest
) -> None:
    fixture, method, _ = PLATFORMS[channel]
    fake = request.getfixturevalue(fixture)
    # the 5th send is refused with "retry after 2 s"
    fake.play("slow", method, times=4, delay=0)
    fake.play("429", method, times=1, retry_after=2)
    queue(db_url, channel, [(f"C{i}", f"hello {i}") for i in range(90)])
    calls = fake.wait_for(method, 90, timeout=30)
    assert len(calls) == 90, f"{len(calls)} of 90 messages arrived"
    [refused] = fake.calls_to(method, failed=True)
    during = [c for c in calls if refused.at + 0.2 < c.at < refused.at + 1.9]
    assert not during, f"{len(during)} messages went out during the 2 s the platform asked for"
    after = [c.at for c in calls if c.at >= refused.at + 1.9]
    assert after, "nothing was sent after the pause"
    if channel == "telegram":
        assert most_in_a_second(after) <= 30
    # the refused message went out again, once
    texts = [str(c.params.get("text")) for c in calls]
    assert texts.count(str(refused.params.get("text"))) == 1
    assert len(set(texts)) == 90


def test_a_database_outage_while_sending_doubles_and_loses_nothing(
    telegram: FakeTelegram,
    pg_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    """PostgreSQL goes away for 4 s in the middle of a run of sends (its connections are
    terminated and new ones refused): the "sent" record of the message on the wire fails; it
    is retried, not sent again. Every message arrives, once."""
    import asyncpg

    from tests.conftest import PG_ADMIN_URL

    name = pg_url.rsplit("/", 1)[1]
    settings = make_settings(
        pg_url,
        telegram_token=telegram.token,
        telegram_api_url=telegram.url,
        delivery_lease_seconds=3.0,
        delivery_send_timeout=0.5,
        delivery_batch_size=10,
    )
    start_server(warm_nlu(settings))
    telegram.delay = 0.05  # a send takes a while: the outage finds one on the wire
    queue(pg_url, "telegram", [(str(2000 + i), f"note {i}") for i in range(40)])
    telegram.wait_for("sendMessage", 8, timeout=20)

    async def outage() -> None:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await asyncio.sleep(4.0)  # the outage itself
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()

    asyncio.run(outage())
    calls = telegram.wait_for("sendMessage", 40, timeout=60)
    texts = [str(c.params["text"]) for c in calls]
    assert sorted(set(texts)) == sorted(f"note {i}" for i in range(40)), "messages were lost"

    async def settled() -> dict[str, int]:
        from sqlalchemy import func, select

        from bot.storage.models import OutboxMessage

        db = Database(pg_url)
        try:
            async with db.session() as s:
                rows = await s.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                )
                return {st: n for st, n in rows.all()}
        finally:
            await db.dispose()

    deadline = time.monotonic() + 30
    while (st := asyncio.run(settled())) != {"sent": 40}:
        assert time.monotonic() < deadline, st
        time.sleep(0.1)
    texts = [str(c.params["text"]) for c in telegram.calls_to("sendMessage")]
    doubled = sorted({t for t in texts if texts.count(t) > 1})
    assert not doubled, f"sent twice: {doubled}"
