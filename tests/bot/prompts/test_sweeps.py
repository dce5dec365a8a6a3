"""Sweeps: cron schedules in each person's zone, attribute dates, segments, stage entries that
came without a signal (bulk changes), re-entry rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import update

from bot.prompts.service import PromptService
from bot.runtime import Runtime
from bot.storage.models import Contact
from tests.bot.prompts.conftest import SetClock, actions, add_contact, outbox, step, use_prompts


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


async def test_schedule_fires_at_local_time_for_its_audience_only(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(
        svc,
        tmp_path,
        """
        prompts:
          - id: monday_roast
            purpose: marketing
            trigger: {schedule: "0 9 * * MON", audience: {purchase_count: {gte: 2}}}
            reentry: always
            response: utter_prompt_roast_of_month
        """,
        horizon_hours=30,
    )
    berlin = await add_contact(rt, tz="Europe/Berlin", purchases=3)
    york = await add_contact(rt, tz="America/New_York", purchases=2)
    no_zone = await add_contact(rt, tz=None, purchases=5)  # the shop's default zone (Berlin)
    once = await add_contact(rt, tz="Europe/Berlin", purchases=1)  # not in the audience
    await step(svc, clock, utc(1, 11, 12), sweep=True)  # Sunday
    first = {a.contact_id: a.due_at for a in await actions(rt)}
    assert set(first) == {berlin, york, no_zone} and once not in first
    assert first[berlin].astimezone(ZoneInfo("Europe/Berlin")).hour == 9
    assert first[york].astimezone(ZoneInfo("America/New_York")).hour == 9
    assert first[no_zone] == first[berlin]
    await step(svc, clock, utc(1, 12, 8, 0), sweep=True)  # Monday 09:00 Berlin
    assert {r.contact_id for r in await outbox(rt)} == {berlin, no_zone}
    await step(svc, clock, utc(1, 12, 14, 0), sweep=True)  # 09:00 New York
    assert {r.contact_id for r in await outbox(rt)} == {berlin, no_zone, york}
    await step(svc, clock, utc(1, 12, 20, 0), sweep=True)  # later sweeps: nothing twice
    assert len(await outbox(rt)) == 3
    await step(svc, clock, utc(1, 19, 8, 0), sweep=True)  # next Monday, again
    assert len(await outbox(rt)) == 5


async def test_attribute_date_three_days_before_renewal(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(
        svc,
        tmp_path,
        """
        prompts:
          - id: reorder
            trigger: {attribute: beans_next_delivery_at, offset: -3d, at: "10:00"}
            reentry: {after: 20d}
            response: utter_prompt_reorder
        """,
    )
    soon = await add_contact(rt, attributes={"beans_next_delivery_at": "2026-01-15"})
    later = await add_contact(rt, attributes={"beans_next_delivery_at": "2026-02-15"})
    garbage = await add_contact(rt, attributes={"beans_next_delivery_at": "next week"})
    await add_contact(rt)
    await step(svc, clock, utc(1, 11, 12), sweep=True)
    [a] = await actions(rt)
    assert a.contact_id == soon and a.instance_key == "attr:2026-01-15"
    assert a.due_at.astimezone(ZoneInfo("Europe/Berlin")) == datetime(
        2026, 1, 12, 10, tzinfo=ZoneInfo("Europe/Berlin")
    )
    await step(svc, clock, utc(1, 12, 9, 0), sweep=True)
    assert [r.contact_id for r in await outbox(rt)] == [soon]
    # the subscription renews: a new date, a new reminder a month later
    async with rt.db.session() as s:
        await s.execute(
            update(Contact)
            .where(Contact.id == soon)
            .values(attributes={"beans_next_delivery_at": "2026-02-15"})
        )
    await step(svc, clock, utc(2, 12, 9, 0), sweep=True)
    assert sorted(r.contact_id for r in await outbox(rt)) == sorted([soon, soon, later])
    assert garbage not in [a.contact_id for a in await actions(rt)]


async def test_segment_membership_once_per_reentry_window(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(
        svc,
        tmp_path,
        """
        segments:
          loyal: {purchase_count: {gte: 3}, lifecycle_stage: {in: [retention, advocacy]}}
        prompts:
          - id: loyal_thanks
            trigger: {segment: loyal, at: "10:00"}
            reentry: {after: 30d}
            response: utter_prompt_nps_promoter
        """,
    )
    loyal = await add_contact(rt, purchases=4)
    newbie = await add_contact(rt, purchases=1)

    async def day(month: int, d: int) -> None:
        await step(svc, clock, utc(month, d, 8, 0), sweep=True)  # 09:00 in Berlin: scheduled
        await step(svc, clock, utc(month, d, 9, 30), sweep=True)  # 10:30: sent

    for d in (5, 6, 7):
        await day(1, d)
    assert [r.contact_id for r in await outbox(rt)] == [loyal]
    async with rt.db.session() as s:  # the newcomer buys twice more
        await s.execute(update(Contact).where(Contact.id == newbie).values(purchase_count=3))
    await day(1, 8)
    assert [r.contact_id for r in await outbox(rt)] == [loyal, newbie]
    await day(2, 3)  # 29 days after the first: not yet
    assert len(await outbox(rt)) == 2
    await day(2, 9)  # over 30 days after each: again, for both
    assert len(await outbox(rt)) == 4


async def test_stage_entered_without_a_signal_is_found_by_the_sweep(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    cid = await add_contact(rt, stage="retention")
    clock.set(utc(1, 5, 15))
    async with rt.db.session() as s:  # a set-based inactivity sweep moved them, no signal
        await s.execute(
            update(Contact)
            .where(Contact.id == cid)
            .values(lifecycle_stage="churned", stage_entered_at=clock.now())
        )
    await step(svc, clock, utc(1, 5, 16), sweep=True)
    [a] = await actions(rt, cid)
    assert a.prompt_id == "win_back" and a.status == "pending"
    assert a.due_at == utc(1, 6, 9)  # the next day, 10:00 in Berlin
    await step(svc, clock, utc(1, 6, 16), sweep=True)  # sweeping again: still one
    assert len(await actions(rt, cid)) == 1


async def test_segment_named_in_lifecycle_yml_reaches_its_members(
    rt: Runtime, clock: SetClock, tmp_path: Path
) -> None:
    """A prompt may name a segment of flows/lifecycle.yml (here ``repeat``: two purchases or
    more) without repeating it in prompts.yml."""
    from bot.lifecycle import setup as lifecycle_setup
    from bot.prompts import configure

    lifecycle_setup(rt)
    svc = configure(rt, scheduler=False)
    use_prompts(
        svc,
        tmp_path,
        """
        prompts:
          - id: repeat_thanks
            trigger: {segment: repeat, at: "10:00"}
            reentry: never
            response: utter_prompt_nps_promoter
        """,
    )
    regular = await add_contact(rt, purchases=2)
    await add_contact(rt, purchases=1)
    await step(svc, clock, utc(1, 5, 8, 0), sweep=True)
    await step(svc, clock, utc(1, 5, 9, 30), sweep=True)
    assert [r.contact_id for r in await outbox(rt)] == [regular]


async def test_inactivity_sweep_schedules_stage_prompts_in_batches(
    rt: Runtime, clock: SetClock
) -> None:
    """The lifecycle sweep tells the prompts feature about everyone it moved, a batch at a
    time: the quiet get "we miss you", those quiet long enough to pass at-risk on to churned
    get the win-back (and their at-risk prompt is cancelled), the active get nothing; a second
    sweep schedules nothing twice."""
    from datetime import timedelta

    from bot.lifecycle import setup as lifecycle_setup
    from bot.prompts import configure

    lifecycle = lifecycle_setup(rt)
    configure(rt, scheduler=False)
    now = utc(3, 2, 3)
    clock.set(now)
    quiet = [await add_contact(rt) for _ in range(3)]
    gone = await add_contact(rt)
    active = await add_contact(rt)
    async with rt.db.session() as s:
        for cid, idle in [*((q, 61) for q in quiet), (gone, 200), (active, 5)]:
            await s.execute(
                update(Contact)
                .where(Contact.id == cid)
                .values(last_activity_at=now - timedelta(days=idle))
            )
    await lifecycle.sweep(now)
    got = {(a.contact_id, a.prompt_id, a.status) for a in await actions(rt)}
    assert got == {
        *((q, "we_miss_you", "pending") for q in quiet),
        (gone, "we_miss_you", "cancelled"),
        (gone, "win_back", "pending"),
    }
    [win] = [a for a in await actions(rt) if a.prompt_id == "win_back"]
    assert win.due_at.astimezone(ZoneInfo("Europe/Berlin")) == datetime(
        2026, 3, 3, 10, tzinfo=ZoneInfo("Europe/Berlin")
    )  # a day after turning churned, at 10:00 local
    await lifecycle.sweep(now + timedelta(hours=1))
    assert len(await actions(rt)) == 5


async def test_batch_scheduling_keeps_the_reentry_rules(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    """Scheduling a batch skips those an earlier occurrence blocks (we_miss_you: again only
    after 90 days), stores the rest once, and a repeated batch adds nothing."""
    from datetime import timedelta

    from bot.prompts import triggers
    from bot.prompts.models import PromptAction

    prompt = svc.book.prompts["we_miss_you"]
    now = clock.now()
    recent, long_ago, fresh = [await add_contact(rt) for _ in range(3)]

    def new(cid: int, key: str, due: datetime) -> triggers.NewAction:
        return triggers.NewAction(cid, prompt, key, due, {})

    async with rt.db.session() as s:
        assert (
            await triggers.schedule(
                s,
                [
                    new(recent, "old", now - timedelta(days=10)),
                    new(long_ago, "old", now - timedelta(days=100)),
                ],
                now,
                check_reentry=False,
            )
            == 2
        )
    async with rt.db.session() as s:  # both were sent back then
        await s.execute(update(PromptAction).values(status="sent"))
    batch = [new(c, "stage:at-risk:now", now) for c in (recent, long_ago, fresh)]
    async with rt.db.session() as s:
        assert await triggers.schedule(s, batch, now) == 2
    async with rt.db.session() as s:
        assert await triggers.schedule(s, batch, now) == 0
    got = sorted((a.contact_id, a.instance_key) for a in await actions(rt))
    assert got == sorted(
        [
            (recent, "old"),
            (long_ago, "old"),
            (long_ago, "stage:at-risk:now"),
            (fresh, "stage:at-risk:now"),
        ]
    )
