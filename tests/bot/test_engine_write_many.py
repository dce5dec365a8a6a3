"""``Engine.write_many``: many people's messages in a few statements, each key written once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.engine import Reply
from bot.runtime import Runtime
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


async def test_write_many_writes_each_key_once_with_its_transcript(runtime: Runtime) -> None:
    people = await _people(runtime, 3)
    replies = [_reply(c, v, f"k:{c}") for c, v in people]
    async with runtime.db.session() as s:
        written = await runtime.engine.write_many(s, replies, now=NOW)
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
        again = await runtime.engine.write_many(s, [*replies, _reply(c4, v4, f"k:{c4}")], now=NOW)
    assert list(again) == [f"k:{c4}"]
    async with runtime.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar() == 4
        assert (await s.execute(select(func.count()).select_from(Message))).scalar() == 4


async def test_write_many_splits_long_texts_like_write_reply(runtime: Runtime) -> None:
    [(c, v)] = await _people(runtime, 1)
    runtime.engine.text_limits["telegram"] = 50
    long = " ".join(["coffee"] * 30)
    async with runtime.db.session() as s:
        written = await runtime.engine.write_many(s, [_reply(c, v, "long", long)], now=NOW)
    async with runtime.db.session() as s:
        rows = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
    assert [r.idempotency_key for r in rows][:2] == ["long", "long.p2"]
    assert written == {"long": rows[0].id}
    assert all(len(r.payload["text"]) <= 50 for r in rows)
    assert rows[-1].payload.get("buttons") and not rows[0].payload.get("buttons")
    assert " ".join(r.payload["text"] for r in rows).split() == long.split()
