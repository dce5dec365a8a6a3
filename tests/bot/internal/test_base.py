"""bot.internal.base: time zones, the calendar re-read on change, a message to an employee."""

from __future__ import annotations

import os

from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal.models import Employee
from bot.internal.service import InternalService
from bot.runtime import Runtime
from bot.types import Outbound
from tests.bot.internal.conftest import Content, outbox_rows


def test_time_zone_of_an_employee_or_the_company(svc: InternalService) -> None:
    assert str(svc.tz_of(Employee(timezone="Asia/Tokyo"))) == "Asia/Tokyo"
    assert svc.tz_of(Employee(timezone="Not/AZone")) == svc.calendar.tz
    assert svc.tz_of(None) == svc.calendar.tz


def test_the_calendar_is_read_again_when_its_file_changes(
    svc: InternalService, content: Content
) -> None:
    content.calendar("timezone: Europe/Berlin\n")
    assert svc.calendar.timezone == "Europe/Berlin"
    path = content.calendar("timezone: Asia/Tokyo\n")
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 5))
    assert svc.calendar.timezone == "Asia/Tokyo"


async def test_send_to_makes_the_employee_a_marked_contact_once(
    rt: Runtime, svc: InternalService, clock: ManualClock
) -> None:
    async with rt.db.session() as s:
        emp = (
            await s.execute(select(Employee).where(Employee.slack_user_id == "U02BEN"))
        ).scalar_one()
        for key in ("k1", "k2", "k1"):  # the same key twice: queued once
            await svc.send_to(s, emp, Outbound(text=f"hi {key}"), key=key, now=clock.now())
        contact_id = emp.contact_id
    rows = await outbox_rows(rt)
    assert [r.payload["text"] for r in rows] == ["hi k1", "hi k2"]
    assert {(r.channel, r.address, r.contact_id) for r in rows} == {
        (svc.channel, "U02BEN", contact_id)
    }
