"""The durable outbox and delivery worker: never twice, never lost, in order."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.engine.writer import Reply, write
from bot.outbox import DeliveryWorker
from bot.storage.db import Database
from bot.storage.models import Contact, Identity, OutboxMessage
from bot.types import (
    Delivery,
    Outbound,
    PermanentError,
    RetryAfter,
    SendResult,
    TransientError,
    Unreachable,
)


class RecordingSender:
    """A channel whose platform is a list; failures are scripted per call."""

    channel = "test"

    def __init__(self, failures: list[Exception | None] | None = None, delay: float = 0) -> None:
        self.sent: list[tuple[str, str]] = []
        self.failures = list(failures or [])
        self.delay = delay

    async def send(self, delivery: Delivery) -> SendResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            f = self.failures.pop(0)
            if f is not None:
                raise f
        self.sent.append((delivery.address, delivery.message.text))
        return SendResult(platform_message_id=str(len(self.sent)))


async def queue(db: Database, clock: ManualClock, texts: list[str], address: str = "a") -> None:
    async with db.session() as s:
        for t in texts:
            await write(
                s,
                [
                    Reply(
                        channel="test",
                        address=address,
                        message=Outbound(text=t),
                        idempotency_key=f"{address}:{t}",
                    )
                ],
                now=clock.now(),
            )


def worker(
    db: Database, sender: RecordingSender, clock: ManualClock, **kw: object
) -> DeliveryWorker:
    return DeliveryWorker(db, {"test": sender}, clock=clock, backoff_base=1, backoff_max=60, **kw)  # type: ignore[arg-type]


async def statuses(db: Database) -> dict[str, str]:
    async with db.session() as s:
        rows = (await s.execute(select(OutboxMessage))).scalars()
        return {r.idempotency_key: r.status for r in rows}


async def test_same_key_is_queued_once(db: Database) -> None:
    clock = ManualClock()
    await queue(db, clock, ["one", "one"])
    sender = RecordingSender()
    await worker(db, sender, clock).drain()
    assert sender.sent == [("a", "one")]


async def test_transient_failures_retry_in_order_exactly_once(db: Database) -> None:
    clock = ManualClock()
    await queue(db, clock, ["1", "2", "3"])
    sender = RecordingSender(
        [TransientError("HTTP 500"), None, TransientError("reset"), None, None]
    )
    w = worker(db, sender, clock)
    for _ in range(10):
        await w.drain()
        clock.advance(timedelta(minutes=5))
    assert sender.sent == [("a", "1"), ("a", "2"), ("a", "3")]
    assert set((await statuses(db)).values()) == {"sent"}


async def test_retry_after_is_honoured(db: Database) -> None:
    clock = ManualClock()
    await queue(db, clock, ["hi"])
    sender = RecordingSender([RetryAfter(30)])
    w = worker(db, sender, clock)
    await w.drain()
    clock.advance(29)
    await w.drain()
    assert sender.sent == []  # still waiting
    clock.advance(2)
    await w.drain()
    assert sender.sent == [("a", "hi")]


async def test_dead_letter_after_max_attempts_keeps_reason(db: Database) -> None:
    clock = ManualClock()
    await queue(db, clock, ["x"])
    sender = RecordingSender([TransientError("HTTP 502")] * 10)
    w = worker(db, sender, clock, max_attempts=3)
    for _ in range(6):
        await w.drain()
        clock.advance(timedelta(hours=1))
    async with db.session() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert row.status == "dead" and row.attempts == 3
    assert "HTTP 502" in (row.last_error or "")


async def test_permanent_error_dead_letters_at_once(db: Database) -> None:
    clock = ManualClock()
    await queue(db, clock, ["x"])
    await worker(db, RecordingSender([PermanentError("chat not found")]), clock).drain()
    assert await statuses(db) == {"a:x": "dead"}


async def test_unreachable_marks_identity(db: Database) -> None:
    clock = ManualClock()
    async with db.session() as s:
        c = Contact(created_at=clock.now(), updated_at=clock.now(), attributes={})
        s.add(c)
        await s.flush()
        s.add(
            Identity(
                contact_id=c.id,
                channel="test",
                external_id="u1",
                address="a",
                created_at=clock.now(),
            )
        )
    await queue(db, clock, ["x"])
    await worker(db, RecordingSender([Unreachable("bot was blocked by the user")]), clock).drain()
    async with db.session() as s:
        ident = (await s.execute(select(Identity))).scalar_one()
    assert ident.reachable is False and "blocked" in (ident.unreachable_reason or "")


async def test_crashed_worker_lease_expires_and_nothing_is_lost(db: Database) -> None:
    clock = ManualClock()
    await queue(db, clock, ["1", "2"])
    slow = RecordingSender(delay=10)
    w1 = worker(db, slow, clock, lease_seconds=60)
    task = asyncio.create_task(w1.run_once())
    await asyncio.sleep(0.3)  # claimed, sending...
    task.cancel()  # ...the process dies
    with pytest.raises(asyncio.CancelledError):
        await task
    fresh = RecordingSender()
    w2 = worker(db, fresh, clock)
    await w2.drain()
    assert fresh.sent == []  # the lease still holds
    clock.advance(61)
    await w2.drain()
    assert fresh.sent == [("a", "1"), ("a", "2")]


async def test_two_workers_send_each_message_once(db: Database) -> None:
    clock = ManualClock()
    for addr in "abcdefghij":
        await queue(db, clock, [f"{addr}1", f"{addr}2", f"{addr}3"], address=addr)
    s1, s2 = RecordingSender(delay=0.001), RecordingSender(delay=0.001)
    db2 = Database(db.url)
    try:
        w1, w2 = worker(db, s1, clock), worker(db2, s2, clock)
        await asyncio.gather(w1.drain(), w2.drain())
    finally:
        await db2.dispose()
    sent = sorted(s1.sent + s2.sent)
    assert len(sent) == 30 and len(set(sent)) == 30
    for addr in "abcdefghij":  # per address, in order
        texts = [t for a, t in s1.sent + s2.sent if a == addr]
        assert sorted(texts) == [f"{addr}1", f"{addr}2", f"{addr}3"]


async def test_rows_sent_together_are_written_down_together(db: Database) -> None:
    """Ten people answered in one round by a worker that may have ten sends in doubt: their
    ten confirmations share one commit, and each keeps the platform's own message id."""
    from sqlalchemy import event

    clock = ManualClock()
    for i in range(10):
        await queue(db, clock, [f"hi {i}"], address=f"p{i}")
    updates: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX SET STATUS"):
            updates.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        sender = RecordingSender()
        await worker(db, sender, clock, in_doubt=10).drain()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    assert sorted(a for a, _ in sender.sent) == sorted(f"p{i}" for i in range(10))
    assert set((await statuses(db)).values()) == {"sent"}
    # the claim is one UPDATE; the confirmations another (executemany), not ten transactions
    assert len(updates) <= 3, updates
    async with db.session() as s:
        ids = (await s.execute(select(OutboxMessage.platform_message_id))).scalars().all()
    assert sorted(ids, key=int) == [str(i) for i in range(1, 11)]


async def test_one_send_in_doubt_at_a_time_by_default(db: Database) -> None:
    """By default a send is written down as sent before the channel's next send starts: a
    crash at any moment leaves at most one message whose fate is unknown (sent again)."""
    clock = ManualClock()
    for i in range(6):
        await queue(db, clock, [f"hi {i}"], address=f"p{i}")
    unrecorded_at_send: list[int] = []

    class Watching(RecordingSender):
        async def send(self, delivery: Delivery) -> SendResult:
            async with db.session() as s:
                sent = (
                    await s.execute(select(OutboxMessage).where(OutboxMessage.status == "sent"))
                ).all()
            unrecorded_at_send.append(len(self.sent) - len(sent))
            return await super().send(delivery)

    sender = Watching(delay=0.01)
    await worker(db, sender, clock).drain()
    assert len(sender.sent) == 6
    assert unrecorded_at_send == [0] * 6  # each earlier send was written down already
