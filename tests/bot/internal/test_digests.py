"""bot.internal.digests: held updates bundled at the digest time (or when the calendar opens),
the weekly support & sales digest created once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal import configure
from bot.internal.models import Update, UpdateDelivery
from bot.internal.service import InternalService
from bot.runtime import Runtime
from tests.bot.internal.conftest import Content, outbox_rows, step


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


LOW = "title: Trivia\naudience: user:U01ANNA\npriority: low\nschedule: 2026-01-05 10:00"


async def test_a_low_priority_update_waits_for_the_digest(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update("trivia", LOW)
    await svc.sync_files()
    await step(svc, clock, utc(5, 9))
    assert await outbox_rows(rt) == []  # held
    clock.set(utc(9, 14))  # Friday 15:00 in Berlin
    stats = await svc.run_once()
    assert stats.digests == 1
    [digest] = await outbox_rows(rt, address="U01ANNA")
    assert "Trivia" in digest.payload["text"]
    async with rt.db.session() as s:
        d = (await s.execute(select(UpdateDelivery))).scalar_one()
    assert (d.status, d.digest_outbox_id) == ("bundled", digest.id)


async def test_a_digest_on_a_holiday_waits_for_the_next_working_morning(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.calendar(
        """
        timezone: Europe/Berlin
        working_hours: "09:00-17:00"
        dates:
          - {date: 2026-01-09, kind: holiday, title: Company day}
        """
    )
    content.update("trivia", LOW)
    await svc.sync_files()
    await step(svc, clock, utc(5, 9))
    clock.set(utc(9, 14))  # Friday 15:00: the holiday
    stats = await svc.run_once()
    assert (stats.digests, stats.deferred) == (0, 1)
    assert await outbox_rows(rt) == []
    async with rt.db.session() as s:
        d = (await s.execute(select(UpdateDelivery))).scalar_one()
    due = d.due_at if d.due_at.tzinfo else d.due_at.replace(tzinfo=UTC)
    assert (d.status, due) == ("held", utc(12, 8))  # Monday 09:00 in Berlin
    await step(svc, clock, utc(12, 8))
    assert len(await outbox_rows(rt, address="U01ANNA")) == 1


async def test_the_team_digest_is_created_once_a_week(
    rt: Runtime, svc: InternalService, clock: ManualClock
) -> None:
    svc = configure(rt, team_digest=True, scheduler=False)
    first = await svc.ensure_team_digest(utc(5, 6))
    assert first is not None and first.key == "team-digest-2026-w02"
    assert await svc.ensure_team_digest(utc(5, 7)) is None  # already there
    assert await svc.ensure_team_digest(utc(7, 9)) is None  # Wednesday: too late for this week
    async with rt.db.session() as s:
        keys = list((await s.execute(select(Update.key))).scalars())
    assert keys == ["team-digest-2026-w02"]
