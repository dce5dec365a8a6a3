"""Working hours with a controlled clock, and what starts a handoff."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.handoff.hours import WorkingHours
from bot.handoff.models import Handoff
from bot.handoff.service import HandoffService
from bot.runtime import Runtime
from bot.settings import Settings
from bot.types import Inbound


def test_next_opening_respects_zone_weekend_and_holidays() -> None:
    h = WorkingHours.parse("mon-fri 09:00-17:00", "Europe/Budapest", [date(2026, 12, 28)])
    # Friday 2026-12-25 18:30 in Budapest (17:30 UTC): closed until Monday 09:00, but Monday
    # the 28th is a holiday, so Tuesday 09:00 local
    fri_evening = datetime(2026, 12, 25, 17, 30, tzinfo=UTC)
    assert not h.is_open(fri_evening)
    nxt = h.next_open(fri_evening)
    assert (nxt.year, nxt.month, nxt.day, nxt.hour, nxt.minute) == (2026, 12, 29, 9, 0)
    assert h.is_open(datetime(2026, 12, 29, 8, 0, tzinfo=UTC))  # 09:00 in Budapest


@pytest.mark.parametrize("bad", ["mon-fri 9-5", "someday 09:00-10:00", "mon 10:00-09:00"])
def test_bad_working_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="working hours"):
        WorkingHours.parse(bad, "UTC")


@pytest.fixture
async def rt(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    clock = ManualClock(datetime(2026, 1, 9, 17, 30, tzinfo=UTC))  # Friday 18:30 in Berlin
    r = Runtime(
        make_settings(db_url, handoff_hours="mon-fri 09:00-17:00"),
        clock=clock,
        start_worker=False,
    )
    await r.start(migrate=False)
    yield r
    await r.stop()


def msg(text: str, **kw: object) -> Inbound:
    return Inbound(channel="rest", external_id="cust", text=text, **kw)  # type: ignore[arg-type]


async def test_out_of_hours_promises_the_right_time_and_takes_an_email(rt: Runtime) -> None:
    res = await rt.engine.handle(msg("I want to talk to a human"))
    assert "on Monday at 09:00" in res.replies[0].text
    res = await rt.engine.handle(msg("sure, it's anna@example.org"))
    assert "anna@example.org" in res.replies[0].text
    async with rt.db.session() as s:
        h = (await s.execute(select(Handoff))).scalar_one()
    assert h.email == "anna@example.org" and h.reason == "asked" and h.status == "open"


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        (["Kann ich mit einem Menschen sprechen?"], "asked"),
        (["Beszélhetnék egy emberrel?"], "asked"),
        (["Chcę rozmawiać z człowiekiem"], "asked"),
        (["this bot is useless"], "frustrated"),
        (["where is my parcel 77", "where is my parcel 77", "where is my parcel 77"], "frustrated"),
        (['/request_human{"reason": "unsure"}'], "unsure"),
    ],
)
async def test_triggers_are_recorded_as_the_reason(
    rt: Runtime, texts: list[str], reason: str
) -> None:
    for t in texts:
        await rt.engine.handle(msg(t, payload=t if t.startswith("/") else None))
    async with rt.db.session() as s:
        h = (await s.execute(select(Handoff))).scalar_one()
    assert h.reason == reason


async def test_vip_goes_to_staff_on_an_unsure_answer(rt: Runtime) -> None:
    from bot.storage.models import Contact

    await rt.engine.handle(msg("hello"))
    async with rt.db.session() as s:
        c = (await s.execute(select(Contact))).scalar_one()
        c.attributes = {"vip": True}
    await rt.engine.handle(msg("qwx zzkv plorb"))
    async with rt.db.session() as s:
        h = (await s.execute(select(Handoff))).scalar_one()
    assert h.reason == "vip"


async def test_metrics(rt: Runtime) -> None:
    await rt.engine.handle(msg("human please"))
    m = await rt.service(HandoffService).metrics()
    assert m["by_reason"] == {"asked": 1} and m["by_status"] == {"open": 1}
    import httpx

    from channels.app import create_app

    transport = httpx.ASGITransport(app=create_app(runtime=rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        text = (await client.get("/metrics")).text
    assert 'concierge_handoffs{reason="asked"} 1.0' in text


async def test_sla_reposts_unanswered_handoffs_once_per_period(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    from bot.storage.models import OutboxMessage

    clock = ManualClock(datetime(2026, 1, 7, 10, 0, tzinfo=UTC))  # Wednesday, open
    rt = Runtime(
        make_settings(db_url, slack_staff_channel="CSTAFF", handoff_sla_minutes=15),
        clock=clock,
        start_worker=False,
    )
    await rt.start(migrate=False)
    try:
        await rt.engine.handle(msg("human please"))
        svc = rt.service(HandoffService)
        assert await svc.console.sla_sweep() == 0
        clock.advance(16 * 60)
        assert await svc.console.sla_sweep() == 1
        assert await svc.console.sla_sweep() == 0  # not again within the period
        clock.advance(16 * 60)
        assert await svc.console.sla_sweep() == 1
        async with rt.db.session() as s:
            texts = [r.payload["text"] for r in (await s.execute(select(OutboxMessage))).scalars()]
        assert sum("has waited" in t for t in texts) == 2
    finally:
        await rt.stop()
