"""One turn of the engine, with the demo shop's content (nlu_data/, flows/)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import Message, OutboxMessage
from bot.types import Inbound


def msg(text: str, who: str = "u1", **kw: object) -> Inbound:
    return Inbound(channel="rest", external_id=who, text=text, **kw)  # type: ignore[arg-type]


async def test_answer_is_written_to_transcript_and_outbox(rt: Runtime) -> None:
    res = await rt.engine.handle(msg("How long is the warranty on the machines?"))
    assert "2-year" in res.replies[0].text
    async with rt.db.session() as s:
        out = (await s.execute(select(Message).where(Message.direction == "out"))).scalars().all()
        queued = (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar()
        inbound = (await s.execute(select(Message).where(Message.direction == "in"))).scalar_one()
    assert queued == len(res.replies) == len(out)
    assert out[0].intent == "faq/warranty" and out[0].confidence is not None
    assert inbound.intent == "faq/warranty"


async def test_unsure_twice_offers_a_person(rt: Runtime) -> None:
    # unsure once: a person is one of the choices (staff are reachable), beside the topics
    first = await rt.engine.handle(msg("zxqv blorp"))
    assert "/request_human" in [b.payload for b in first.replies[0].buttons]
    second = await rt.engine.handle(msg("qwrtz plonk"))
    payloads = [b.payload for b in second.replies[0].buttons]
    assert '/request_human{"reason": "unsure"}' in payloads


async def test_feedback_is_stored_on_the_answer(rt: Runtime) -> None:
    res = await rt.engine.handle(msg("/faq/returns", payload="/faq/returns"))
    question = res.replies[-1]
    yes = next(b for b in question.buttons if "helpful" in b.payload and "not" not in b.payload)
    await rt.engine.handle(msg(yes.title, payload=yes.payload))
    async with rt.db.session() as s:
        answer = (
            await s.execute(
                select(Message).where(Message.intent == "faq/returns", Message.direction == "out")
            )
        ).scalar_one()
    assert answer.feedback == "helpful"


async def test_redelivered_platform_message_is_handled_once(rt: Runtime) -> None:
    a = await rt.engine.handle(msg("hello", platform_message_id="tg:1"))
    b = await rt.engine.handle(msg("hello", platform_message_id="tg:1"))
    assert a.replies and not b.replies and b.duplicate


async def test_oversized_message_refused_with_clear_reply_in_language(rt: Runtime) -> None:
    res = await rt.engine.handle(msg("ä" * 3000, language="de"))
    assert res.refused == "too_large"
    assert "zu lang" in res.replies[0].text and "4096" in res.replies[0].text


@pytest.mark.parametrize("word", ["stop", "STOP", "/stop", "Stopp", "leiratkozom"])
async def test_stop_opts_out_of_marketing(rt: Runtime, word: str) -> None:
    from bot.storage.models import Contact

    res = await rt.engine.handle(msg(word))
    async with rt.db.session() as s:
        contact = (await s.execute(select(Contact))).scalar_one()
    assert contact.marketing_opt_out is True and contact.marketing_opt_out_at is not None
    confirmations = {rt.responses.text("utter_opted_out", lang) for lang in rt.responses.languages}
    assert res.replies[0].text in confirmations


async def test_a_short_text_is_answered_in_the_language_the_person_writes(
    rt: Runtime, db_url: str, make_settings: Callable[..., Settings]
) -> None:
    # "ok" and "Klarna?" alone look Hungarian and German to the language identifier
    await rt.engine.handle(msg("Can I pay in instalments with Klarna?", who="anna"))
    for short in ("ok", "Klarna?"):
        res = await rt.engine.handle(msg(short, who="anna"))
        assert res.language == "en", short
    # a restarted server does not remember: the contact's stored language does
    again = Runtime(make_settings(db_url), start_worker=False)
    await again.start(migrate=False)
    try:
        res = await again.engine.handle(msg("ok", who="anna"))
        assert res.language == "en"
        async with again.db.session() as s:
            q = select(Message.language).where(Message.direction == "out")
            assert set((await s.execute(q)).scalars()) == {"en"}  # every reply in English
    finally:
        await again.stop()
