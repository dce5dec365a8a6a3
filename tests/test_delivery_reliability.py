"""Reliable delivery end to end: outbox rows, the delivery worker, the real Telegram and Slack
clients, and fake platform servers over real HTTP that fail on purpose.

What a person notices: every message arrives, once, in the order it was written; a rate limit
or an outage only delays it; a worker killed in the middle of a batch and started again neither
loses nor repeats a message the platform confirmed; a person who blocked the bot is not written
to again. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.engine.writer import Reply, write
from bot.outbox import DeliveryWorker
from bot.ratelimit import Rate
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Contact, Identity, OutboxMessage
from bot.types import Outbound, Sender
from channels.slack import SlackSender
from channels.telegram import TelegramSender, limiter, make_bot
from tests.fakes.base import Call, FakeServer
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram

_keys = itertools.count()


@dataclass
class Platform:
    """One fake platform and a sender (the real client) pointed at it."""

    name: str
    fake: FakeServer
    method: str  # the API method that sends a message
    address_param: str  # its parameter naming the chat / channel
    make_sender: Callable[[], Any]  # an async factory: a fresh sender (a new process)

    def received(self, address: str | None = None) -> list[str]:
        """Texts the platform took in (a call that was done, whether or not answered)."""
        return [
            str(c.params.get("text"))
            for c in self.fake.calls_to(self.method)
            if address is None or str(c.params.get(self.address_param)) == address
        ]

    def calls(self) -> list[Call]:
        return self.fake.calls_to(self.method)


@pytest.fixture
async def platforms(
    telegram: FakeTelegram,
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[dict[str, Platform]]:
    settings = make_settings(db_url, telegram_token=telegram.token, telegram_api_url=telegram.url)
    bots: list[Any] = []

    async def tg_sender() -> Sender:
        bot = make_bot(settings)
        await bot.initialize()
        bots.append(bot)
        return TelegramSender(bot)

    async def slack_sender() -> Sender:
        return SlackSender(AsyncWebClient(token="xoxb-test", base_url=slack.api_url))

    yield {
        "telegram": Platform("telegram", telegram, "sendMessage", "chat_id", tg_sender),
        "slack": Platform("slack", slack, "chat.postMessage", "channel", slack_sender),
    }
    for bot in bots:
        await bot.shutdown()


async def queue(db: Database, channel: str, address: str, texts: list[str]) -> None:
    async with db.session() as s:
        for t in texts:
            await write(
                s,
                [
                    Reply(
                        channel=channel,
                        address=address,
                        message=Outbound(text=t),
                        idempotency_key=f"k{next(_keys)}",
                    )
                ],
                now=_now(),
            )


def _now() -> Any:
    from bot.clock import utcnow

    return utcnow()


def make_worker(db: Database, sender: Sender, **kw: Any) -> DeliveryWorker:
    opts: dict[str, Any] = {
        "backoff_base": 0.05,
        "backoff_max": 0.3,
        "poll_interval": 0.02,
        **kw,
    }
    return DeliveryWorker(db, {sender.channel: sender}, **opts)


async def statuses(db: Database) -> dict[str, list[str]]:
    async with db.session() as s:
        rows = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r.status, []).append(r.payload["text"])
        return out


async def settle(db: Database, timeout: float = 20.0) -> dict[str, list[str]]:
    """Wait until no row is pending or being sent; the rows' texts by status."""
    deadline = time.monotonic() + timeout
    while True:
        st = await statuses(db)
        if not st.get("pending") and not st.get("sending"):
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox did not settle: {st}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(worker: DeliveryWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def conversation(chats: int, per_chat: int) -> dict[str, list[str]]:
    return {
        str(700 + c): [f"chat {700 + c} message {i}" for i in range(per_chat)] for c in range(chats)
    }


# --- outages and rate limits -------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["telegram", "slack"])
@pytest.mark.parametrize("scenario", ["429", "500", "reset", "slow"])
async def test_every_message_arrives_once_and_in_order_through_failures(
    db: Database, platforms: dict[str, Platform], channel: str, scenario: str
) -> None:
    p = platforms[channel]
    p.fake.play(scenario, p.method, times=6, retry_after=1, delay=0.3)
    chats = conversation(chats=5, per_chat=4)
    for address, texts in chats.items():
        await queue(db, channel, address, texts)
    async with running(make_worker(db, await p.make_sender())):
        st = await settle(db)
    assert sorted(st) == ["sent"], st
    for address, texts in chats.items():
        assert p.received(address) == texts  # each once, in the order written
    failed = p.fake.calls_to(p.method, failed=True)
    if scenario != "slow":
        assert len(failed) == 6  # the platform really failed those calls


@pytest.mark.parametrize("channel", ["telegram", "slack"])
async def test_rate_limited_send_waits_retry_after(
    db: Database, platforms: dict[str, Platform], channel: str
) -> None:
    p = platforms[channel]
    p.fake.play("429", p.method, times=1, retry_after=1)
    await queue(db, channel, "42", ["hello", "again"])
    async with running(make_worker(db, await p.make_sender())):
        await settle(db)
    refused = p.fake.calls_to(p.method, failed=True)
    calls = p.calls()
    assert len(refused) == 1 and p.received("42") == ["hello", "again"]
    assert calls[0].at - refused[0].at >= 0.95  # waited as told, not the short backoff


async def test_telegram_limits_per_chat_and_overall(
    db: Database, platforms: dict[str, Platform]
) -> None:
    p = platforms["telegram"]
    # scaled-down limits so that the test is quick: 5/s a chat, 1/s a group, 20/s overall
    limits = limiter(
        per_chat=Rate(5.0, burst=1), per_group=Rate(1.0, burst=1), overall=Rate(20.0, burst=1)
    )
    await queue(db, "telegram", "1", [f"one {i}" for i in range(6)])
    await queue(db, "telegram", "-100", [f"group {i}" for i in range(3)])
    for c in range(30):
        await queue(db, "telegram", str(1000 + c), ["hi"])
    sender = await p.make_sender()
    async with running(make_worker(db, sender, limiters={"telegram": limits})):
        await settle(db)

    def gaps(address: str) -> list[float]:
        ts = [c.at for c in p.calls() if str(c.params["chat_id"]) == address]
        return [b - a for a, b in itertools.pairwise(ts)]

    # Arrival times at the fake carry the machine's scheduling jitter (one request delayed
    # makes the next gap look short), so: the rate holds over the whole run, and no two
    # messages ever arrive back to back as a burst would.
    for address, interval, count in (("1", 0.2, 6), ("-100", 1.0, 3)):
        assert sum(gaps(address)) >= (count - 1) * interval * 0.95
        assert min(gaps(address)) >= interval * 0.5
    stamps = sorted(c.at for c in p.calls())
    assert len(stamps) == 39
    # no one-second window holds more than the overall rate (plus the burst)
    assert max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps) <= 21


# --- dead letters ------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["telegram", "slack"])
async def test_outage_longer_than_the_attempts_dead_letters_with_reason(
    db: Database, platforms: dict[str, Platform], channel: str
) -> None:
    p = platforms[channel]
    p.fake.play("500", p.method, times=100)
    await queue(db, channel, "9", ["lost cause"])
    async with running(make_worker(db, await p.make_sender(), max_attempts=3)):
        st = await settle(db)
    assert st == {"dead": ["lost cause"]}
    assert len(p.fake.calls_to(p.method, failed=True)) == 3
    async with db.session() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
        assert "gave up after 3 attempts" in (row.last_error or "")


async def test_bad_request_dead_letters_at_once(
    db: Database, platforms: dict[str, Platform]
) -> None:
    p = platforms["telegram"]
    p.fake.play(
        "custom",
        "sendMessage",
        status=400,
        body={"ok": False, "error_code": 400, "description": "Bad Request: message is too long"},
    )
    await queue(db, "telegram", "5", ["x"])
    async with running(make_worker(db, await p.make_sender())):
        assert await settle(db) == {"dead": ["x"]}
    async with db.session() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert "too long" in (row.last_error or "") and row.attempts == 1


# --- blocked users ----------------------------------------------------------------------------


async def add_identity(db: Database, channel: str, address: str) -> None:
    async with db.session() as s:
        c = Contact(created_at=_now(), updated_at=_now(), attributes={})
        s.add(c)
        await s.flush()
        s.add(
            Identity(
                contact_id=c.id,
                channel=channel,
                external_id=address,
                address=address,
                created_at=_now(),
            )
        )


async def test_blocked_user_is_marked_unreachable_and_not_written_to_again(
    db: Database, platforms: dict[str, Platform]
) -> None:
    p = platforms["telegram"]
    await add_identity(db, "telegram", "55")
    await add_identity(db, "telegram", "56")
    p.fake.play("403", "sendMessage", times=100, when={"chat_id": "55"})
    await queue(db, "telegram", "55", ["a", "b", "c"])
    await queue(db, "telegram", "56", ["still here"])
    async with running(make_worker(db, await p.make_sender())):
        st = await settle(db)
    assert st == {"dead": ["a", "b", "c"], "sent": ["still here"]}
    # one refused call, then no more tries for that chat
    assert len(p.fake.calls_to("sendMessage", failed=True)) == 1
    async with db.session() as s:
        idents = {i.external_id: i for i in (await s.execute(select(Identity))).scalars()}
        reasons = {
            r.payload["text"]: r.last_error
            for r in (await s.execute(select(OutboxMessage))).scalars()
        }
    assert idents["55"].reachable is False
    assert "blocked" in (idents["55"].unreachable_reason or "")
    assert idents["56"].reachable is True
    assert all("unreachable" in (reasons[t] or "") for t in "abc")


# --- crashes and restarts --------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["telegram", "slack"])
async def test_worker_killed_mid_batch_and_restarted_loses_and_repeats_nothing(
    db: Database, platforms: dict[str, Platform], channel: str
) -> None:
    """Kill the worker while sends are in flight. Its claimed rows come back when their lease
    runs out; a fresh worker (a fresh client, as after a restart) sends what was not confirmed.

    A send in flight at the moment of the kill was taken in by the platform but never confirmed:
    nobody can know whether it arrived, so it is sent again (at least once). A worker has one
    send in doubt at a time (per channel), so at most that one message arrives twice.
    Everything the platform confirmed before the kill arrives exactly once."""
    p = platforms[channel]
    p.fake.delay = 0.2  # every send takes a while, so the kill finds one in flight
    chats = conversation(chats=6, per_chat=4)
    for address, texts in chats.items():
        await queue(db, channel, address, texts)
    first = make_worker(db, await p.make_sender(), lease_seconds=3.0, send_timeout=0.5)
    task = asyncio.create_task(first.run())
    deadline = time.monotonic() + 10
    while len([c for c in p.calls() if c.answered]) < 6:  # the first round got through
        assert time.monotonic() < deadline, "nothing was sent"
        await asyncio.sleep(0.01)
    while all(c.answered for c in p.calls()):  # the next send is on the wire
        assert time.monotonic() < deadline, "nothing more was sent"
        await asyncio.sleep(0.01)
    task.cancel()  # the process dies
    with contextlib.suppress(asyncio.CancelledError):
        await task
    confirmed = {str(c.params["text"]) for c in p.calls() if c.answered}
    in_flight = {str(c.params["text"]) for c in p.calls() if not c.answered}
    assert confirmed and in_flight, "the kill should fall between confirmations"
    st = await statuses(db)
    assert sorted(st["sent"]) == sorted(confirmed)  # each confirmation was written down

    assert len(in_flight) == 1  # one send in doubt at a time

    p.fake.delay = 0.0
    async with running(make_worker(db, await p.make_sender(), lease_seconds=3.0)):
        st = await settle(db)
    assert sorted(st) == ["sent"]
    repeated_all: set[str] = set()
    for address, texts in chats.items():
        got = p.received(address)
        assert list(dict.fromkeys(got)) == texts  # nothing lost, order kept
        repeated = {t for t in got if got.count(t) > 1}
        assert repeated <= in_flight  # only an unconfirmed send can be repeated
        assert not repeated & confirmed
        repeated_all |= repeated
    assert len(repeated_all) <= 1


@pytest.mark.parametrize("channel", ["telegram", "slack"])
async def test_two_workers_share_the_queue_without_sending_twice(
    db: Database, platforms: dict[str, Platform], channel: str
) -> None:
    p = platforms[channel]
    p.fake.delay = 0.01
    chats = conversation(chats=15, per_chat=3)
    for address, texts in chats.items():
        await queue(db, channel, address, texts)
    other_db = Database(db.url)  # a second process has its own connections
    try:
        w1 = make_worker(db, await p.make_sender(), batch_size=10)
        w2 = make_worker(other_db, await p.make_sender(), batch_size=10)
        async with running(w1), running(w2):
            st = await settle(db)
    finally:
        await other_db.dispose()
    assert sorted(st) == ["sent"]
    for address, texts in chats.items():
        assert p.received(address) == texts


async def test_stopping_the_product_lets_sends_in_flight_finish(
    db: Database,
    telegram: FakeTelegram,
    db_url: str,
    make_settings: Callable[..., Settings],
) -> None:
    """A deploy stops the product while messages are on the wire: they complete and are written
    down as sent, so the next start repeats none of them."""
    from bot.matcher import SimpleMatcher
    from bot.runtime import Runtime
    from channels import telegram as tg_channel

    settings = make_settings(db_url, telegram_token=telegram.token, telegram_api_url=telegram.url)

    def product() -> Runtime:
        rt = Runtime(settings, nlu=SimpleMatcher.from_folder(settings.nlu_data_dir))
        tg_channel.routes(rt)
        return rt

    chats = conversation(chats=4, per_chat=3)
    for address, texts in chats.items():
        await queue(db, "telegram", address, texts)
    telegram.delay = 0.5
    first = product()
    await first.start(migrate=False)
    deadline = time.monotonic() + 10
    while not telegram.calls_to("sendMessage"):
        assert time.monotonic() < deadline, "nothing was sent"
        await asyncio.sleep(0.01)
    await first.stop()  # with four sends on the wire
    calls = telegram.calls_to("sendMessage")
    assert calls and all(c.answered for c in calls)
    assert sorted((await statuses(db))["sent"]) == sorted(str(c.params["text"]) for c in calls)

    telegram.delay = 0.0
    second = product()
    await second.start(migrate=False)
    try:
        st = await settle(db)
    finally:
        await second.stop()
    assert sorted(st) == ["sent"]
    for address, texts in chats.items():
        assert telegram.sent_texts(address) == texts
