"""The staff desk (bot/handoff/staff.py) without any platform: what staff words and buttons do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.handoff.models import ASSIGNED, RESOLVED, WAITING, Handoff
from bot.handoff.service import HandoffService
from bot.handoff.staff import USAGE, StaffDesk
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import Message, OutboxMessage
from bot.types import Inbound


@pytest.fixture
async def rt(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    clock = ManualClock(datetime(2026, 1, 7, 10, 0, tzinfo=UTC))  # Wednesday, staff at work
    r = Runtime(
        make_settings(db_url, slack_staff_channel="CSTAFF"), clock=clock, start_worker=False
    )
    await r.start(migrate=False)
    yield r
    await r.stop()


async def open_handoff(rt: Runtime) -> tuple[StaffDesk, Handoff]:
    await rt.engine.handle(Inbound(channel="rest", external_id="cust", text="a human please"))
    async with rt.db.session() as s:
        h = (await s.execute(select(Handoff))).scalar_one()
    return rt.service(HandoffService).staff, h


async def customer_texts(rt: Runtime, h: Handoff) -> list[str]:
    async with rt.db.session() as s:
        rows = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [r.payload["text"] for r in rows if r.address == h.address]


async def anna() -> str:
    return "Anna"


async def test_a_reply_reaches_the_customer_and_a_marked_note_stays_internal(rt: Runtime) -> None:
    desk, h = await open_handoff(rt)
    assert await desk.reply(handoff_id=h.id, staff="Anna", text="// check the order") == "internal"
    assert await desk.reply(handoff_id=h.id, staff="Anna", text="It ships today.") == "sent"
    texts = await customer_texts(rt, h)
    assert "It ships today." in texts
    assert not any("check the order" in t for t in texts)
    async with rt.db.session() as s:
        note = (
            await s.execute(select(Message).where(Message.text == "// check the order"))
        ).scalar_one()
        handoff = await s.get(Handoff, h.id)
    assert note.meta["internal"] is True
    assert handoff is not None and handoff.status == WAITING and handoff.assignee == "Anna"


async def test_a_message_in_an_unknown_thread_reaches_nobody(rt: Runtime) -> None:
    desk, h = await open_handoff(rt)
    before = await customer_texts(rt, h)
    result = await desk.reply(thread=("CSTAFF", "999.1"), staff="Anna", text="hello?")
    assert result == "unknown"
    assert await customer_texts(rt, h) == before


async def test_commands_take_and_resolve_or_explain_themselves(rt: Runtime) -> None:
    desk, h = await open_handoff(rt)
    assert await desk.command("take", anna) == USAGE
    assert await desk.command("close 1", anna) == USAGE
    assert await desk.command("take #x", anna) == "'#x' is not a handoff number"
    assert await desk.command(f"take 9{h.id}", anna) == f"Handoff #9{h.id}: unknown"
    assert await desk.command(f"take #{h.id}", anna) == f"Handoff #{h.id}: taken"
    async with rt.db.session() as s:
        taken = await s.get(Handoff, h.id)
    assert taken is not None and (taken.status, taken.assignee) == (ASSIGNED, "Anna")
    assert await desk.command(f"resolve {h.id}", anna) == f"Handoff #{h.id}: resolve"
    async with rt.db.session() as s:
        done = await s.get(Handoff, h.id)
    assert done is not None and done.status == RESOLVED
    # the customer is handed back to the bot and asked for a rating
    lang = h.language or rt.settings.default_language
    assert (await customer_texts(rt, h))[-2:] == [
        rt.responses.text("utter_handoff_back", lang),
        rt.responses.text("utter_csat_question", lang),
    ]
    assert await desk.command(f"take {h.id}", anna) == f"Handoff #{h.id}: resolved"


async def test_a_summary_button_acts_and_other_payloads_are_not_staff_business(
    rt: Runtime,
) -> None:
    desk, h = await open_handoff(rt)
    assert not await desk.button("/faq_shipping", anna)
    assert await desk.button(f'/handoff{{"action": "handback", "id": {h.id}}}', anna)
    async with rt.db.session() as s:
        back = await s.get(Handoff, h.id)
    assert back is not None and back.status == RESOLVED
    assert await desk.button("/handoff{not json", anna)  # a broken handoff button: ignored
