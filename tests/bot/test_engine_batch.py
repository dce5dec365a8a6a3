"""Turns that arrive together are written together (group commit), on SQLite and PostgreSQL:
everyone gets their own answer, a person's messages keep their order, and a turn that fails
(or a platform's redelivery) costs only itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from bot.engine import Turn, TurnResult
from bot.handoff.models import Handoff
from bot.runtime import Runtime
from bot.storage.models import Identity, Message, OutboxMessage
from bot.types import Inbound

QUESTIONS = [
    ("How long is the warranty on the machines?", "2-year"),
    ("Wie lange gilt die Garantie auf die Maschinen?", "2 Jahre"),
]


def msg(text: str, who: str, **kw: Any) -> Inbound:
    return Inbound(channel="rest", external_id=who, text=text, **kw)


async def together(rt: Runtime, *inbound: Inbound) -> list[TurnResult | BaseException]:
    return await asyncio.gather(*(rt.engine.handle(i) for i in inbound), return_exceptions=True)


@contextmanager
def message_inserts(rt: Runtime) -> Iterator[list[str]]:
    """The INSERT statements into ``messages`` sent while the block runs."""
    seen: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MESSAGES"):
            seen.append(statement)

    event.listen(rt.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(rt.db.engine.sync_engine, "before_cursor_execute", record)


async def transcript(rt: Runtime, who: str) -> list[tuple[str, str]]:
    async with rt.db.session() as s:
        rows = (
            await s.execute(
                select(Message.direction, Message.text)
                .join(Identity, Identity.contact_id == Message.contact_id)
                .where(Identity.external_id == who)
                .order_by(Message.id)
            )
        ).all()
    return [(d, t) for d, t in rows]


async def test_people_writing_at_once_each_get_their_answer_in_one_write(rt: Runtime) -> None:
    people = [f"p{i}" for i in range(10)]
    with message_inserts(rt) as inserts:
        results = await together(
            rt, *(msg(QUESTIONS[i % 2][0], who) for i, who in enumerate(people))
        )
    for i, r in enumerate(results):
        assert isinstance(r, TurnResult)
        assert QUESTIONS[i % 2][1] in r.replies[0].text, r.replies[0].text
        assert r.language == ("en", "de")[i % 2]
    # ten turns, two statements into the transcript: their messages, then their answers
    assert len(inserts) == 2
    for i, who in enumerate(people):
        t = await transcript(rt, who)
        assert t[0] == ("in", QUESTIONS[i % 2][0])
        assert [d for d, _ in t] == ["in", "out", "out"]  # the answer, "Was this helpful?"
    async with rt.db.session() as s:
        keys = (await s.execute(select(OutboxMessage.idempotency_key))).scalars().all()
    assert len(keys) == len(set(keys)) == 20


async def test_a_persons_messages_sent_at_once_keep_their_order(rt: Runtime) -> None:
    results = await together(
        rt,
        msg("hello", "ann"),
        msg(QUESTIONS[0][0], "ann"),
        msg(QUESTIONS[1][0], "bob"),
    )
    assert all(isinstance(r, TurnResult) for r in results)
    t = await transcript(rt, "ann")
    ins = [text for d, text in t if d == "in"]
    assert ins == ["hello", QUESTIONS[0][0]]
    # the greeting's answer comes before the second question, not after it
    assert t[0] == ("in", "hello") and t[1][0] == "out" and t.index(("in", QUESTIONS[0][0])) > 1


async def test_a_failing_turn_costs_only_itself(rt: Runtime) -> None:
    async def explode(turn: Turn) -> bool:
        if turn.inbound.text == "please break this turn":
            raise RuntimeError("a policy broke")
        return False

    rt.engine.add_policy("explode", explode, priority=1)
    results = await together(
        rt, msg(QUESTIONS[0][0], "a"), msg("please break this turn", "b"), msg(QUESTIONS[1][0], "c")
    )
    failed = results[1]  # its message is kept, the person gets an apology
    assert isinstance(failed, TurnResult)
    assert [m.text for m in failed.replies] == [
        "Sorry, something went wrong on our side. Your message has arrived; please try again "
        "in a moment."
    ]
    for r, (_, expected) in zip([results[0], results[2]], QUESTIONS, strict=True):
        assert isinstance(r, TurnResult) and expected in r.replies[0].text
    # nothing of what the failed policy did was kept: the message and the apology only
    assert [d for d, _ in await transcript(rt, "b")] == ["in", "out"]
    assert rt.engine.turn_errors == {"rest": 1}
    for who in ("a", "c"):  # the others ran again on their own: written once, not twice
        assert [d for d, _ in await transcript(rt, who)] == ["in", "out", "out"]


async def test_a_redelivery_among_others_is_dropped_and_the_others_answered(
    rt: Runtime,
) -> None:
    first = await rt.engine.handle(msg("hello", "tg1", platform_message_id="tg:7"))
    assert first.replies
    results = await together(
        rt,
        msg(QUESTIONS[0][0], "x"),
        msg("hello", "tg1", platform_message_id="tg:7"),
        msg(QUESTIONS[1][0], "y"),
    )
    again = results[1]
    assert isinstance(again, TurnResult) and again.duplicate and not again.replies
    assert all(isinstance(r, TurnResult) and r.replies for r in (results[0], results[2]))
    assert [d for d, _ in await transcript(rt, "tg1")].count("in") == 1
    assert [d for d, _ in await transcript(rt, "x")] == ["in", "out", "out"]


async def test_the_same_question_three_times_reaches_staff_amid_other_traffic(
    rt: Runtime,
) -> None:
    """The repeated-question trigger reads the last texts of all of a batch's conversations
    in one statement; each person's count stays their own."""
    same = "where is my parcel 77"
    for round_ in range(3):
        await together(
            rt,
            msg(same, "stuck"),
            *(msg(f"{same} {round_}{i}", f"other{i}") for i in range(4)),
            msg(("hello", "hi there", "good morning")[round_], "new"),
        )
    async with rt.db.session() as s:
        handoffs = (await s.execute(select(Handoff))).scalars().all()
        stuck = (
            await s.execute(select(Identity.contact_id).where(Identity.external_id == "stuck"))
        ).scalar_one()
    assert [(h.contact_id, h.reason) for h in handoffs] == [(stuck, "frustrated")]


async def test_a_policy_calling_the_engine_fails_loudly_instead_of_waiting_forever(
    rt: Runtime,
) -> None:
    async def reentrant(turn: Turn) -> bool:
        if turn.inbound.text == "please call the engine again":
            await rt.engine.handle(msg("hello", "inner"))
        return False

    errors: list[BaseException] = []
    rt.engine.error_hooks.append(lambda _, e: errors.append(e))
    rt.engine.add_policy("reentrant", reentrant, priority=1)
    # the turn's error boundary: the error hook gets it, the person an apology
    failed = await asyncio.wait_for(
        rt.engine.handle(msg("please call the engine again", "outer")), 10
    )
    assert [str(e) for e in errors] == [
        "Engine.handle called from inside a turn; queue a reply instead"
    ]
    assert failed.message_id is not None
    assert failed.replies[0].text.startswith("Sorry, something went wrong on our side")
    ok = await rt.engine.handle(msg(QUESTIONS[0][0], "next"))  # the engine goes on
    assert QUESTIONS[0][1] in ok.replies[0].text
