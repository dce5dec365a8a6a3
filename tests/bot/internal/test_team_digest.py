"""The weekly support & sales digest, from the assistant's own conversations."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import ManualClock
from bot.internal import configure
from bot.internal.service import InternalService
from bot.runtime import Runtime
from bot.types import Inbound
from tests.bot.internal.conftest import outbox_rows, step


async def test_support_and_sales_get_top_questions_and_faq_gaps_on_monday(
    rt: Runtime, svc: InternalService, clock: ManualClock
) -> None:
    configure(rt, team_digest=True, scheduler=False)
    questions = ["How long is the warranty on the machines?"] * 3
    questions += ["What is your return policy?"] * 2
    questions += ["Can my dog visit the roastery?"] * 2 + ["zxqv blorp"]
    clock.set(datetime(2026, 1, 7, 12, 0, tzinfo=UTC))  # Wednesday of the week before
    for i, q in enumerate(questions):
        await rt.engine.handle(Inbound(channel="rest", external_id=f"customer{i}", text=q))
    await _handoffs(rt, [(utc_day(6), 4), (utc_day(8), 5), (utc_day(9), None), (utc_day(12), 1)])
    # an employee asking the bot is not a customer question
    await rt.engine.handle(Inbound(channel="slack", external_id="U01ANNA", text="zxqv blorp"))

    await step(svc, clock, datetime(2026, 1, 12, 7, 59, tzinfo=UTC))  # Monday 08:59 in Berlin
    assert await outbox_rows(rt, address="U04DAN") == []
    await step(svc, clock, datetime(2026, 1, 12, 8, 0, tzinfo=UTC))  # 09:00 Berlin and Warsaw
    await step(svc, clock, datetime(2026, 1, 12, 14, 0, tzinfo=UTC))  # 09:00 in New York
    rows = [r for r in await outbox_rows(rt) if r.payload["metadata"].get("internal_update")]
    assert {r.address for r in rows} == {"U01ANNA", "U02BEN", "U03CARA", "U04DAN", "U05EVA"}
    text = next(r for r in rows if r.address == "U04DAN").payload["text"]
    assert "Jan 5, 2026 to Jan 11, 2026" in text  # the dates in the reader's words (Babel)
    assert "Customer conversations: 8" in text
    top = text.split("Top questions*")[1].split("*FAQ gaps")[0]
    assert top.index("Warranty") < top.index("Returns")
    assert "(3)" in top and "(2)" in top
    gaps = text.split("FAQ gaps")[1]
    assert "\u201ccan my dog visit the roastery?\u201d (2)" in gaps
    assert "Handed to a person: 3" in text  # the handoff feature's own table
    assert "CSAT: 4.50 (2 rating(s))" in text
    # the digest is not an update: it never counts against the weekly cap
    await step(svc, clock, datetime(2026, 1, 12, 15, 0, tzinfo=UTC))
    assert len([r for r in await outbox_rows(rt, address="U04DAN")]) == 1


def utc_day(day: int) -> datetime:
    return datetime(2026, 1, day, 12, 0, tzinfo=UTC)


async def _handoffs(rt: Runtime, rows: list[tuple[datetime, int | None]]) -> None:
    """Handoffs as the handoff feature stores them (the last one falls in the next week)."""
    from bot.handoff.models import Handoff
    from bot.storage.models import Contact, Conversation

    async with rt.db.session() as s:
        for i, (when, csat) in enumerate(rows):
            c = Contact(created_at=when, updated_at=when, attributes={})
            s.add(c)
            await s.flush()
            conv = Conversation(contact_id=c.id, created_at=when, updated_at=when, state={})
            s.add(conv)
            await s.flush()
            s.add(
                Handoff(
                    contact_id=c.id,
                    conversation_id=conv.id,
                    reason="asked",
                    channel="web",
                    address=f"v{i}",
                    status="resolved",
                    csat=csat,
                    created_at=when,
                )
            )


def test_without_the_handoff_feature_the_digest_says_so() -> None:
    from bot.internal.render import Texts, team_digest_text

    data = {"start": "2026-01-05", "end": "2026-01-11", "conversations": 0, "handoffs": None}
    text = team_digest_text(data, Texts(), "de")
    assert "Handoffs: nicht verfügbar" in text and "CSAT: nicht verfügbar" in text
    assert text.count("keine") == 2  # no questions, no gaps
