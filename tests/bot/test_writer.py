"""``bot.engine.writer.write``, the one way to queue outbound messages: many people's messages in
a few statements, each key written once, long texts split, outbox-only posts, on SQLite and
PostgreSQL (the ``runtime`` fixture runs each test on both)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.engine import Reply
from bot.engine.writer import write
from bot.runtime import Runtime
from bot.storage import dialect
from bot.storage.models import Contact, Conversation, Message, OutboxMessage
from bot.types import Button, Outbound, Purpose

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


async def _people(rt: Runtime, n: int) -> list[tuple[int, int]]:
    out = []
    async with rt.db.session() as s:
        for _ in range(n):
            c = Contact(created_at=NOW, updated_at=NOW, attributes={})
            s.add(c)
            await s.flush()
            conv = Conversation(contact_id=c.id, created_at=NOW, updated_at=NOW, state={})
            s.add(conv)
            await s.flush()
            out.append((c.id, conv.id))
    return out


def _reply(contact: int, conv: int, key: str, text: str = "Hello") -> Reply:
    return Reply(
        contact_id=contact,
        conversation_id=conv,
        channel="telegram",
        address=str(5000 + contact),
        message=Outbound(text=text, buttons=(Button("Yes", "/yes"),), purpose=Purpose.MARKETING),
        idempotency_key=key,
        language="de",
        meta={"intent": "prompt:test"},
    )


async def test_write_writes_each_key_once_with_its_transcript(runtime: Runtime) -> None:
    people = await _people(runtime, 3)
    replies = [_reply(c, v, f"k:{c}") for c, v in people]
    async with runtime.db.session() as s:
        ids = await runtime.engine.write(s, replies, now=NOW)
    written = {r.idempotency_key: i for r, [i] in zip(replies, ids, strict=True)}
    assert set(written) == {r.idempotency_key for r in replies}
    async with runtime.db.session() as s:
        rows = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
        msgs = {m.id: m for m in (await s.execute(select(Message))).scalars()}
    assert [r.id for r in rows] == sorted(written.values())
    for row in rows:
        m = msgs[row.message_id]  # the transcript row of each outbox row
        assert (m.contact_id, m.direction, m.text, m.intent, m.language) == (
            row.contact_id,
            "out",
            "Hello",
            "prompt:test",
            "de",
        )
        assert row.payload["metadata"]["message_id"] == m.id
        assert row.purpose == "marketing" and row.status == "pending"
        assert row.address == str(5000 + row.contact_id)
    # again, with one new person: only the new key is written, no transcript copies
    ((c4, v4),) = await _people(runtime, 1)
    async with runtime.db.session() as s:
        again = await runtime.engine.write(s, [*replies, _reply(c4, v4, f"k:{c4}")], now=NOW)
    assert [len(i) for i in again] == [0, 0, 0, 1]
    async with runtime.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar() == 4
        assert (await s.execute(select(func.count()).select_from(Message))).scalar() == 4


async def test_write_splits_long_texts_for_the_channel(runtime: Runtime) -> None:
    [(c, v)] = await _people(runtime, 1)
    runtime.engine.text_limits["telegram"] = 50
    long = " ".join(["coffee"] * 30)
    async with runtime.db.session() as s:
        [written] = await runtime.engine.write(s, [_reply(c, v, "long", long)], now=NOW)
    async with runtime.db.session() as s:
        rows = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
    assert [r.idempotency_key for r in rows][:2] == ["long", "long.p2"]
    assert written == [r.id for r in rows]
    assert all(len(r.payload["text"]) <= 50 for r in rows)
    assert rows[-1].payload.get("buttons") and not rows[0].payload.get("buttons")
    assert " ".join(r.payload["text"] for r in rows).split() == long.split()


async def test_a_reply_without_a_conversation_goes_to_the_outbox_only(runtime: Runtime) -> None:
    post = Reply(
        channel="slack",
        address="C-staff",
        message=Outbound(text="New handoff", sender="system", thread_id="t1"),
        idempotency_key="staff-console:1",
    )
    async with runtime.db.session() as s:
        first = await write(s, [post], now=NOW)
        again = await write(s, [post], now=NOW)  # a round run twice: never twice
    assert len(first[0]) == 1 and again == [[]]
    async with runtime.db.session() as s:
        [row] = (await s.execute(select(OutboxMessage))).scalars()
        assert (await s.execute(select(func.count()).select_from(Message))).scalar() == 0
    assert (row.message_id, row.contact_id, row.payload["thread_id"]) == (None, None, "t1")
    assert row.status == "pending" and row.next_attempt_at.replace(tzinfo=UTC) == NOW


async def test_a_reply_the_caller_delivers_is_written_as_sent(runtime: Runtime) -> None:
    [(c, v)] = await _people(runtime, 1)
    inline = Reply(
        contact_id=c,
        conversation_id=v,
        channel="rest",
        address="x",
        message=Outbound(text="Hi"),
        idempotency_key="inline",
        sent=True,
    )
    async with runtime.db.session() as s:
        await write(s, [inline], now=NOW)
    async with runtime.db.session() as s:
        [row] = (await s.execute(select(OutboxMessage))).scalars()
    assert (row.status, row.attempts) == ("sent", 1) and row.sent_at is not None


async def test_a_key_queued_meanwhile_leaves_no_transcript_copy(runtime: Runtime) -> None:
    """Keys the caller says are new (a turn's) are not looked up first; should another writer
    have queued one meanwhile, that message is skipped and its transcript row dropped."""
    [(c, v)] = await _people(runtime, 1)
    async with runtime.db.session() as s:
        await write(s, [_reply(c, v, "taken")], now=NOW)
    async with runtime.db.session() as s:
        got = await write(
            s, [_reply(c, v, "taken"), _reply(c, v, "free")], now=NOW, check_existing=False
        )
    assert [len(i) for i in got] == [0, 1]
    async with runtime.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(Message))).scalar() == 2


async def test_a_large_batch_keeps_each_reply_with_its_own_rows(runtime: Runtime) -> None:
    """From ``PREFETCH_IDS_FROM`` rows PostgreSQL takes the ids first: each reply's outbox id
    still points at its own transcript row."""
    n = dialect.PREFETCH_IDS_FROM + 6
    people = await _people(runtime, n)
    replies = [_reply(c, v, f"big:{c}", f"Hello {c}") for c, v in people]
    async with runtime.db.session() as s:
        ids = await write(s, replies, now=NOW)
    assert all(len(i) == 1 for i in ids)
    async with runtime.db.session() as s:
        rows = {r.id: r for r in (await s.execute(select(OutboxMessage))).scalars()}
        msgs = {m.id: m for m in (await s.execute(select(Message))).scalars()}
    for r, [oid] in zip(replies, ids, strict=True):
        row = rows[oid]
        assert row.idempotency_key == r.idempotency_key
        assert msgs[row.message_id].text == r.message.text == row.payload["text"]
