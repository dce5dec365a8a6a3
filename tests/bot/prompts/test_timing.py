"""When prompts go out: local times in three zones, quiet hours, exits, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.prompts.service import PromptService
from bot.runtime import Runtime
from tests.bot.prompts.conftest import (
    SetClock,
    actions,
    add_contact,
    outbox,
    shop_event,
    step,
    use_prompts,
)

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def test_review_request_seven_days_after_delivery_at_ten_local_in_three_zones(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    people = {tz: await add_contact(rt, tz=tz) for tz in ZONES}
    delivered = utc(5, 15, 0)  # 16:00 Berlin, 10:00 New York, 00:00 (6 Jan) Tokyo
    clock.set(delivered)
    for cid in people.values():
        await shop_event(rt, cid, "delivered", category="beans")
    sent_at: dict[str, datetime] = {}
    t = utc(11, 0, 0)
    while t <= utc(14, 0, 0):  # every half hour from 11 to 14 January
        await step(svc, clock, t)
        for tz, cid in people.items():
            rows = [r for r in await outbox(rt, cid) if "review" in r.payload["text"].lower()]
            if rows and tz not in sent_at:
                sent_at[tz] = t
        t += timedelta(minutes=30)
    local = {tz: sent_at[tz].astimezone(ZoneInfo(tz)) for tz in ZONES}
    assert {tz: (d.day, d.hour, d.minute) for tz, d in local.items()} == {
        "Europe/Berlin": (12, 10, 0),
        "America/New_York": (12, 10, 0),
        "Asia/Tokyo": (13, 10, 0),  # delivered on 6 January there
    }
    for cid in people.values():  # exactly one each, on Telegram, with a review link button
        rows = await outbox(rt, cid)
        assert len(rows) == 1
        assert rows[0].channel == "telegram"
        assert rows[0].purpose == "marketing"
        assert any(b.get("url") for b in rows[0].payload["buttons"])
        assert "Reply STOP" in rows[0].payload["text"]


async def test_quiet_hours_defer_to_the_morning_not_drop(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(
        svc,
        tmp_path,
        """
        prompts:
          - id: shipping_note
            trigger: {event: shipped}
            response: utter_prompt_reorder
        """,
    )
    berlin = await add_contact(rt, tz="Europe/Berlin")
    tokyo = await add_contact(rt, tz="Asia/Tokyo")
    await step(svc, clock, utc(5, 21, 30))  # 22:30 in Berlin, 06:30 (6 Jan) in Tokyo
    await shop_event(rt, berlin, "shipped")
    await shop_event(rt, tokyo, "shipped")
    stats = await step(svc, clock, utc(5, 21, 31))
    assert stats.deferred == 2 and stats.sent == 0
    assert await outbox(rt) == []
    [a] = await actions(rt, berlin)
    assert a.status == "pending" and a.reason == "quiet_hours" and a.deferrals == 1
    assert a.due_at == utc(6, 7, 0)  # 08:00 in Berlin
    await step(svc, clock, utc(5, 23, 0))  # 08:00 in Tokyo
    assert [r.contact_id for r in await outbox(rt)] == [tokyo]
    await step(svc, clock, utc(6, 6, 59))  # 07:59 in Berlin: still quiet, nothing new
    assert len(await outbox(rt)) == 1
    await step(svc, clock, utc(6, 7, 0))
    rows = await outbox(rt)
    assert [r.contact_id for r in rows] == [tokyo, berlin]
    assert rows[1].purpose == "service"


async def test_exit_event_cancels_the_pending_reminder(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    cid = await add_contact(rt)
    clock.set(utc(5, 12))
    await shop_event(rt, cid, "delivered")
    review = {a.prompt_id: a for a in await actions(rt, cid)}["review_request"]
    assert review.status == "pending"
    clock.set(utc(8, 12))
    await shop_event(rt, cid, "review_submitted")  # reviewed on their own before we asked
    after = {a.prompt_id: a for a in await actions(rt, cid)}
    assert after["review_request"].status == "cancelled"
    assert after["review_request"].reason == "exit:review_submitted"
    assert after["nps_survey"].status == "pending"  # not a prompt this event ends
    await step(svc, clock, utc(12, 9, 0))  # past the due time (10:00 Berlin on 12 Jan)
    assert await outbox(rt, cid) == []


async def test_the_same_event_twice_and_two_rounds_send_once(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    cid = await add_contact(rt)
    clock.set(utc(5, 12))
    event = await shop_event(rt, cid, "delivered")
    # the lifecycle feature redelivers the signal (a retried request): same instance key
    from tests.bot.prompts.conftest import ShopEvent

    again = ShopEvent(
        type=event.type,
        occurred_at=event.occurred_at,
        properties=event.properties,
        id=event.id,
        event_id=event.event_id,
    )
    from bot.storage.models import Contact

    async with rt.db.session() as s:
        await rt.signals.event_recorded.send(
            session=s, contact=await s.get(Contact, cid), event=again
        )
    assert sorted(a.prompt_id for a in await actions(rt, cid)) == ["nps_survey", "review_request"]
    await step(svc, clock, utc(12, 9, 0))
    await step(svc, clock, utc(12, 9, 0))
    await step(svc, clock, utc(13, 9, 0))
    assert len(await outbox(rt, cid)) == 1
    # a second delivery within the re-entry window does not ask again
    clock.set(utc(14, 12))
    await shop_event(rt, cid, "delivered")
    await step(svc, clock, utc(21, 9, 30))
    assert len(await outbox(rt, cid)) == 1
