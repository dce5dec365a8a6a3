"""Scheduling: audience, local time, weekly cap and digest, company holidays, working hours."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal.models import Update, UpdateDelivery
from bot.internal.service import InternalService
from bot.runtime import Runtime
from bot.storage.models import Contact
from bot.types import Outbound
from tests.bot.internal.conftest import Content, outbox_rows, step

SUPPORT = {"U01ANNA", "U02BEN", "U03CARA"}


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def test_update_reaches_exactly_the_department_at_each_local_time(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update(
        "returns-policy",
        """
        title: New returns policy
        audience: department:support
        schedule: 2026-01-05 10:00
        goal: product_knowledge
        """,
        "Returns are now accepted for **60 days**.",
    )
    await svc.sync_files()
    await step(svc, clock, utc(5, 8, 59))  # 09:59 in Berlin and Budapest: nobody yet
    assert await outbox_rows(rt) == []
    await step(svc, clock, utc(5, 9, 0))  # 10:00 in Berlin and Budapest
    first = await outbox_rows(rt)
    assert {r.address for r in first} == {"U01ANNA", "U02BEN"}
    await step(svc, clock, utc(5, 14, 59))  # 09:59 in New York
    assert len(await outbox_rows(rt)) == 2
    await step(svc, clock, utc(5, 15, 0))  # 10:00 in New York
    rows = await outbox_rows(rt)
    assert {r.address for r in rows} == SUPPORT  # sales and engineering get nothing
    assert all(r.channel == "slack" for r in rows)
    assert "New returns policy" in rows[0].payload["text"]
    payloads = [b["payload"] for b in rows[0].payload["buttons"]]
    assert any('"got_it"' in p for p in payloads) and any('"rating:5"' in p for p in payloads)
    await step(svc, clock, utc(6, 12, 0))  # later rounds never send it again
    assert len(await outbox_rows(rt)) == 3
    async with rt.db.session() as s:  # colleagues are marked, so customer prompts skip them
        marked = (
            (
                await s.execute(
                    select(Contact.attributes).where(Contact.id.in_([r.contact_id for r in rows]))
                )
            )
            .scalars()
            .all()
        )
    assert marked == [{"employee": True}] * 3


async def test_the_fourth_update_of_a_week_is_held_and_bundled_into_the_digest(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    for i, day in enumerate((5, 6, 7, 8), 1):
        content.update(
            f"news-{i}",
            f"""
            title: Weekly news number {i}
            audience: department:support
            schedule: 2026-01-{day:02d} 10:00
            """,
            f"What happened, part {i}.",
        )
    await svc.sync_files()
    for day in (5, 6, 7, 8):
        await step(svc, clock, utc(day, 15, 0))  # 10:00 in New York, 16:00 in Europe
    anna = await outbox_rows(rt, address="U01ANNA")
    assert [r.payload["text"].split("\n")[0] for r in anna] == [
        "*Weekly news number 1*",
        "*Weekly news number 2*",
        "*Weekly news number 3*",
    ]
    async with rt.db.session() as s:
        held = (
            (
                await s.execute(
                    select(UpdateDelivery)
                    .join(Update)
                    .where(Update.key == "news-4", UpdateDelivery.status == "held")
                )
            )
            .scalars()
            .all()
        )
    assert len(held) == 3 and all("weekly cap 3" in (d.reason or "") for d in held)

    await step(svc, clock, utc(9, 13, 59))  # Friday 14:59 in Berlin: not yet digest time
    assert len(await outbox_rows(rt, address="U01ANNA")) == 3
    await step(svc, clock, utc(9, 14, 0))  # Friday 15:00 in Berlin
    anna = await outbox_rows(rt, address="U01ANNA")
    assert len(anna) == 4
    digest = anna[-1].payload["text"]
    assert "Weekly news number 4" in digest and "number 1" not in digest
    async with rt.db.session() as s:
        statuses = (
            (
                await s.execute(
                    select(UpdateDelivery.status).join(Update).where(Update.key == "news-4")
                )
            )
            .scalars()
            .all()
        )
    assert sorted(statuses) == ["bundled", "bundled", "held"]  # New York's 15:00 comes later
    await step(svc, clock, utc(9, 20, 0))
    assert len(await outbox_rows(rt, address="U03CARA")) == 4


async def test_important_passes_the_cap_once_a_week_low_priority_waits_for_the_digest(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    for i in range(1, 4):
        content.update(
            f"n{i}", f"title: News {i}\naudience: user:U06FIN\nschedule: 2026-01-05 10:0{i}"
        )
    content.update(
        "urgent-1",
        "title: Urgent one\naudience: user:U06FIN\nimportant: true\nschedule: 2026-01-05 11:00",
    )
    content.update(
        "urgent-2",
        "title: Urgent two\naudience: user:U06FIN\nimportant: true\nschedule: 2026-01-05 12:00",
    )
    content.update(
        "trivia", "title: Trivia\naudience: user:U06FIN\npriority: low\nschedule: 2026-01-05 09:30"
    )
    await svc.sync_files()
    for hour, minute in ((9, 5), (10, 0), (11, 0)):  # 10:05, 11:00 and 12:00 in Berlin
        await step(svc, clock, utc(5, hour, minute))
    texts = [r.payload["text"].split("\n")[0] for r in await outbox_rows(rt)]
    assert texts == ["*News 1*", "*News 2*", "*News 3*", "*Urgent one*"]
    async with rt.db.session() as s:
        reasons = dict(
            (
                await s.execute(
                    select(Update.key, UpdateDelivery.reason)
                    .join(Update)
                    .where(UpdateDelivery.status == "held")
                )
            ).all()
        )
    assert "important" in reasons["urgent-2"] and "low priority" in reasons["trivia"]


async def test_a_holiday_defers_the_send_to_the_next_working_morning(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.calendar(
        """
        timezone: Europe/Berlin
        working_hours: "09:00-17:00"
        dates:
          - {date: 2026-01-06, kind: holiday, title: Epiphany}
        """
    )
    content.update(
        "on-holiday",
        "title: Sent on a holiday?\naudience: user:U01ANNA\nschedule: 2026-01-06 10:00",
    )
    content.update(
        "late-evening",
        "title: Written late\naudience: user:U06FIN\nschedule: 2026-01-05 20:00",
    )
    await svc.sync_files()
    await step(svc, clock, utc(5, 19, 30))  # Monday 20:30 in Berlin: outside working hours
    await step(svc, clock, utc(6, 9, 0))  # Tuesday 10:00: the holiday
    assert await outbox_rows(rt) == []
    async with rt.db.session() as s:
        d = (
            await s.execute(select(UpdateDelivery).join(Update).where(Update.key == "on-holiday"))
        ).scalar_one()
    assert d.reason == "deferred: holiday (Epiphany)"
    assert d.due_at == utc(7, 8, 0)  # Wednesday 09:00 in Berlin
    await step(svc, clock, utc(7, 7, 59))
    assert await outbox_rows(rt) == []
    await step(svc, clock, utc(7, 8, 0))
    assert {r.address for r in await outbox_rows(rt)} == {"U01ANNA", "U06FIN"}


async def test_channel_delivery_posts_once_in_the_channel(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update(
        "all-hands",
        "title: All hands on Thursday\naudience: everyone\ndelivery: channel\n"
        "channel: C0GENERAL\nschedule: 2026-01-05 10:00 Europe/Berlin",
    )
    await svc.sync_files()
    await step(svc, clock, utc(5, 9, 0))
    await step(svc, clock, utc(5, 9, 5))
    rows = await outbox_rows(rt)
    assert [r.address for r in rows] == ["C0GENERAL"]


async def test_muted_topic_is_skipped_cancelled_update_is_not_sent(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    from bot.internal.models import Employee

    async with rt.db.session() as s:
        anna = (
            await s.execute(select(Employee).where(Employee.slack_user_id == "U01ANNA"))
        ).scalar_one()
        anna.opted_down = ["launch"]
    content.update(
        "launch",
        "title: Launch\naudience: department:support\ntopic: launch\nschedule: 2026-01-05 10:00",
    )
    content.update(
        "later", "title: Later\naudience: department:support\nschedule: 2026-01-06 10:00"
    )
    await svc.sync_files()
    await step(svc, clock, utc(5, 15, 0))
    assert {r.address for r in await outbox_rows(rt)} == {"U02BEN", "U03CARA"}
    assert await svc.cancel("later") == 0  # not expanded yet: nothing planned to drop
    await step(svc, clock, utc(6, 15, 0))
    assert len(await outbox_rows(rt)) == 2


async def test_a_round_run_twice_at_once_sends_once(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    import asyncio

    content.update("once", "title: Once\naudience: everyone\nschedule: 2026-01-05 10:00")
    await svc.sync_files()
    clock.set(utc(5, 15, 0))
    await asyncio.gather(svc.run_once(utc(5, 15, 0)), svc.run_once(utc(5, 15, 0)))
    rows = await outbox_rows(rt)
    assert sorted(r.address for r in rows) == sorted(
        ["U01ANNA", "U02BEN", "U03CARA", "U04DAN", "U05EVA", "U06FIN"]
    )


def test_outbound_payload_round_trips() -> None:
    # the Block Kit copy travels in metadata; the outbox keeps it as JSON
    o = Outbound(text="x", metadata={"blocks": [{"type": "section"}]})
    assert Outbound.from_dict(o.to_dict()).metadata["blocks"] == [{"type": "section"}]


async def test_each_employee_gets_their_language_when_the_update_has_it(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update(
        "hours",
        "title: New support hours\naudience: department:support\nschedule: 2026-01-05 10:00",
        "From Monday we open at 8.",
    )
    (content.root / "updates" / "hours.de.md").write_text(
        "---\ntitle: Neue Supportzeiten\n---\nAb Montag öffnen wir um 8.\n", encoding="utf-8"
    )
    await svc.sync_files()
    await step(svc, clock, utc(5, 15, 0))
    texts = {r.address: r.payload["text"] for r in await outbox_rows(rt)}
    assert texts["U01ANNA"].startswith("*Neue Supportzeiten*\n\nAb Montag")  # German
    assert texts["U01ANNA"].endswith("(1 = gar nicht, 5 = sehr)")
    assert texts["U02BEN"].startswith("*New support hours*")  # no Hungarian version: English


async def test_the_running_scheduler_picks_up_new_and_changed_files(
    rt: Runtime, svc: InternalService, content: Content
) -> None:
    assert await svc.sync_files_if_changed()  # first look
    assert not await svc.sync_files_if_changed()  # nothing changed
    content.update("fresh", "title: Fresh\naudience: everyone")
    assert await svc.sync_files_if_changed()
    async with rt.db.session() as s:
        titles = (await s.execute(select(Update.title))).scalars().all()
    assert titles == ["Fresh"]
