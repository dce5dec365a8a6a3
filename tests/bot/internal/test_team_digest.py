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
    # an employee asking the bot is not a customer question
    await rt.engine.handle(Inbound(channel="slack", external_id="U01ANNA", text="zxqv blorp"))

    await step(svc, clock, datetime(2026, 1, 12, 7, 59, tzinfo=UTC))  # Monday 08:59 in Berlin
    assert await outbox_rows(rt, address="U04DAN") == []
    await step(svc, clock, datetime(2026, 1, 12, 8, 0, tzinfo=UTC))  # 09:00 Berlin and Warsaw
    await step(svc, clock, datetime(2026, 1, 12, 14, 0, tzinfo=UTC))  # 09:00 in New York
    rows = [r for r in await outbox_rows(rt) if r.payload["metadata"].get("internal_update")]
    assert {r.address for r in rows} == {"U01ANNA", "U02BEN", "U03CARA", "U04DAN", "U05EVA"}
    text = next(r for r in rows if r.address == "U04DAN").payload["text"]
    assert "2026-01-05 to 2026-01-11" in text
    assert "Customer conversations: 8" in text
    top = text.split("Top questions*")[1].split("*FAQ gaps")[0]
    assert top.index("Warranty") < top.index("Returns")
    assert "(3)" in top and "(2)" in top
    gaps = text.split("FAQ gaps")[1]
    assert "\u201ccan my dog visit the roastery?\u201d (2)" in gaps
    if await _has_table(rt, "handoffs"):  # the handoff feature is installed: its figures
        assert "Handed to a person: 0" in text and "CSAT: – (0 rating(s))" in text
    else:  # degrade gracefully
        assert "Handoffs: not available" in text
    # the digest is not an update: it never counts against the weekly cap
    await step(svc, clock, datetime(2026, 1, 12, 15, 0, tzinfo=UTC))
    assert len([r for r in await outbox_rows(rt, address="U04DAN")]) == 1


async def _has_table(rt: Runtime, name: str) -> bool:
    from sqlalchemy import inspect

    async with rt.db.engine.connect() as conn:
        return name in await conn.run_sync(lambda c: inspect(c).get_table_names())
