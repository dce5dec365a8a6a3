"""bot.internal.rules: one delivery's decision through choose_reach (hold, capability, window)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal.models import Employee, Update, UpdateDelivery
from bot.internal.rules import CalendarWindow, Rules
from bot.internal.service import InternalService
from bot.outreach.reach import DEFER, SEND, SKIP
from bot.runtime import Runtime
from tests.bot.internal.conftest import Content, outbox_rows, step

BERLIN = ZoneInfo("Europe/Berlin")


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def test_reach_sends_in_working_hours_and_defers_outside(svc: InternalService) -> None:
    at_ten = svc.reach("U01ANNA", BERLIN, utc(5, 9))  # Monday 10:00 in Berlin
    assert (at_ten.outcome, at_ten.channel, at_ten.address) == (SEND, svc.channel, "U01ANNA")
    early = svc.reach("U01ANNA", BERLIN, utc(5, 6))  # 07:00 in Berlin
    assert early.outcome == DEFER and early.until == svc.calendar.next_open(
        utc(5, 6).astimezone(BERLIN)
    ).astimezone(UTC)
    assert early.reason is not None and early.reason.startswith("outside working hours")


async def test_reach_skips_without_the_channel_or_an_address(svc: InternalService) -> None:
    assert svc.reach(None, BERLIN, utc(5, 9)).reason == "unreachable"
    svc.channel = None  # no adapter said where employees are
    assert svc.reach("U01ANNA", BERLIN, utc(5, 9)).outcome == SKIP
    assert svc.reach("U01ANNA", BERLIN, utc(5, 9), hold="update cancelled").reason == (
        "update cancelled"
    )


async def test_a_channel_that_cannot_write_first_reaches_nobody(svc: InternalService) -> None:
    svc.channel = "pager"  # no sender, no declared capabilities
    decision = svc.reach("U01ANNA", BERLIN, utc(5, 9))
    assert (decision.outcome, decision.reason, decision.detail) == (SKIP, "unreachable", "pager")


def test_hold_reason_orders_cancelled_inactive_muted() -> None:
    emp = Employee(active=True, opted_down=["launch"])
    u = Update(status="active", topic="launch", important=False)
    assert Rules.hold_reason(emp, u) == "muted topic launch"
    u.important = True
    assert Rules.hold_reason(emp, u) is None  # important updates pass a muted topic
    emp.active = False
    assert Rules.hold_reason(emp, u) == "employee is no longer active"
    u.status = "cancelled"
    assert Rules.hold_reason(emp, u) == "update cancelled"


def test_calendar_window_reads_the_calendar_in_its_zone(svc: InternalService) -> None:
    window = CalendarWindow(svc.calendar, ZoneInfo("America/New_York"))
    assert window.closed(utc(5, 15)) is None  # 10:00 in New York
    assert window.closed(utc(5, 9)) is not None  # 04:00 in New York
    opens = window.next_open(utc(5, 9))
    assert opens.tzinfo is UTC and window.closed(opens) is None and opens > utc(5, 9)


async def test_skips_are_recorded_by_reason(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update("all", "title: For everyone\naudience: everyone\nschedule: 2026-01-05 10:00")
    await svc.sync_files()
    await step(svc, clock, utc(5, 6))  # planned for everyone; nobody's 10:00 yet
    async with rt.db.session() as s:
        emp = (
            await s.execute(select(Employee).where(Employee.slack_user_id == "U06FIN"))
        ).scalar_one()
        emp.active = False
    clock.set(utc(5, 9))
    stats = await svc.run_once()
    assert stats.skipped == {"employee is no longer active": 1}
    assert stats.sent == 4  # the others at 10:00 in central Europe (New York later)
    async with rt.db.session() as s:
        reasons = set((await s.execute(select(UpdateDelivery.reason))).scalars())
    assert "employee is no longer active" in reasons
    assert {r.address for r in await outbox_rows(rt)} == {"U01ANNA", "U02BEN", "U04DAN", "U05EVA"}


async def test_channel_post_waits_for_the_company_window(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update(
        "all-hands",
        "title: All hands\naudience: everyone\ndelivery: channel\nchannel: C0GENERAL\n"
        "schedule: 2026-01-05 07:00 Europe/Berlin",
    )
    await svc.sync_files()
    await step(svc, clock, utc(5, 6))  # 07:00 in Berlin: the post waits
    assert await outbox_rows(rt) == []
    await step(svc, clock, utc(5, 8))  # 09:00 in Berlin
    [post] = await outbox_rows(rt)
    assert (post.address, post.channel, post.contact_id) == ("C0GENERAL", svc.channel, None)
