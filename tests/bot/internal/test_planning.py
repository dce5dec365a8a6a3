"""bot.internal.planning: a round expands an update into deliveries and decides the due ones."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal.models import UpdateDelivery
from bot.internal.service import InternalService
from bot.runtime import Runtime
from tests.bot.internal.conftest import Content, outbox_rows, step


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def test_one_delivery_per_employee_due_at_their_local_time(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update("all", "title: For everyone\naudience: everyone\nschedule: 2026-01-05 10:00")
    await svc.sync_files()
    clock.set(utc(5, 6))
    stats = await svc.run_once()
    assert (stats.expanded, stats.sent) == (6, 0)
    async with rt.db.session() as s:
        due = dict(
            (await s.execute(select(UpdateDelivery.employee_id, UpdateDelivery.due_at))).all()
        )
    times = {d if d.tzinfo else d.replace(tzinfo=UTC) for d in due.values()}
    assert len(due) == 6
    assert (min(times), max(times)) == (utc(5, 9), utc(5, 15))  # central Europe, New York


async def test_a_round_again_plans_and_queues_nothing_twice(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update("all", "title: For everyone\naudience: everyone\nschedule: 2026-01-05 10:00")
    await svc.sync_files()
    await step(svc, clock, utc(5, 16))  # 11:00 in New York; after hours in Europe
    rows = await outbox_rows(rt)
    assert [r.address for r in rows] == ["U03CARA"]
    again = await svc.run_once(utc(5, 16))
    assert (again.expanded, again.sent, again.queued) == (0, 0, 0)
    assert len(await outbox_rows(rt)) == 1


async def test_updates_wait_for_the_first_people_sync(
    svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update("all", "title: For everyone\naudience: everyone\nschedule: 2026-01-05 10:00")
    await svc.sync_files()
    svc.people_ready = False
    clock.set(utc(5, 16))
    stats = await svc.run_once()
    assert stats.expanded == 0 and stats.notes == ["waiting for the first people sync"]
