"""What employees say and press: "what's new?", "what did I miss?", topics, buttons, reactions."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.internal.models import Employee, EngagementEvent
from bot.internal.reports import reports
from bot.internal.service import InternalService
from bot.runtime import Runtime
from bot.types import Delivery, Inbound, SendResult
from channels.slack import CAPABILITIES, CHANNEL
from tests.bot.internal.conftest import Content, outbox_rows, step


def say(who: str, text: str, payload: str | None = None, mid: str | None = None) -> Inbound:
    return Inbound(
        channel="slack", external_id=who, text=text, payload=payload, platform_message_id=mid
    )


async def _two_updates(svc: InternalService, content: Content, clock: ManualClock) -> None:
    content.update(
        "spring-launch",
        """
        title: Spring collection is live
        audience: department:support
        topic: launch
        schedule: 2026-01-05 10:00
        links: [{title: Catalogue, url: "https://example.com/spring"}]
        more: Twelve new blends, three new grinders.
        """,
        "The spring collection is in the shop from today.",
    )
    content.update(
        "numbers",
        "title: December in numbers\naudience: department:support\ntopic: numbers\n"
        "schedule: 2026-01-05 11:00",
        "4,200 orders, 97% on time.",
    )
    await svc.sync_files()
    await step(svc, clock, datetime(2026, 1, 5, 15, 0, tzinfo=UTC))
    await step(svc, clock, datetime(2026, 1, 5, 16, 0, tzinfo=UTC))  # 11:00 in New York


async def test_whats_new_and_what_did_i_miss(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    await _two_updates(svc, content, clock)
    res = await rt.engine.handle(say("U03CARA", "What's new?"))
    text = res.replies[0].text
    assert "Spring collection is live" in text and "December in numbers" in text
    assert "https://example.com/spring" in text

    sent = await outbox_rows(rt, address="U03CARA")
    got_it = next(b for b in sent[0].payload["buttons"] if '"got_it"' in b["payload"])
    ack = await rt.engine.handle(say("U03CARA", got_it["title"], got_it["payload"], "a1"))
    assert ack.replies[0].text == "Noted, thanks!"
    res = await rt.engine.handle(say("U03CARA", "what did I miss?"))
    assert "December in numbers" in res.replies[0].text
    assert "Spring collection" not in res.replies[0].text  # she pressed "Got it" on that one

    # in the person's language (Anna: German)
    res = await rt.engine.handle(say("U01ANNA", "Was gibt's Neues?"))
    assert res.replies[0].text.startswith("Die neuesten Neuigkeiten")
    # not an employee: the FAQ answers as usual
    res = await rt.engine.handle(say("UCUSTOMER", "what's new?"))
    assert res.replies and "Spring" not in res.replies[0].text


async def test_buttons_tell_more_and_rate_once_each(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    await _two_updates(svc, content, clock)
    sent = await outbox_rows(rt, address="U02BEN")
    by_title = {b["title"]: b for b in sent[0].payload["buttons"]}
    more = await rt.engine.handle(
        say("U02BEN", "Tell me more", by_title["Tell me more"]["payload"], "m1")
    )
    assert more.replies[0].text == "Twelve new blends, three new grinders."
    rate = await rt.engine.handle(say("U02BEN", "4", by_title["4"]["payload"], "m2"))
    assert "4/5" in rate.replies[0].text
    again = await rt.engine.handle(say("U02BEN", "4", by_title["4"]["payload"], "m2"))  # retry
    assert again.duplicate and not again.replies
    async with rt.db.session() as s:
        rep = next(r for r in await reports(s) if r.key == "spring-launch")
    assert (rep.more, rep.ratings, rep.rating_avg, rep.engaged) == (1, 1, 4.0, 1)
    assert rep.reached == 3


async def test_topic_subscription_and_less_please(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    await _two_updates(svc, content, clock)
    res = await rt.engine.handle(say("U06FIN", "send me launch notes"))
    assert res.replies[0].text == "Done: you will get launch updates."
    res = await rt.engine.handle(say("U03CARA", "less please"))
    assert "no more numbers updates" in res.replies[0].text  # her latest update's topic
    res = await rt.engine.handle(say("U02BEN", "send me gossip"))
    assert "launch" in res.replies[0].text and "numbers" in res.replies[0].text  # asks which
    async with rt.db.session() as s:
        fin = (
            await s.execute(select(Employee).where(Employee.slack_user_id == "U06FIN"))
        ).scalar_one()
        cara = (
            await s.execute(select(Employee).where(Employee.slack_user_id == "U03CARA"))
        ).scalar_one()
    assert fin.subscriptions == ["launch"]
    assert cara.opted_down == ["numbers"]
    # the subscribers' audience reaches Finn; Cara's muted topic skips her next time
    assert [e.slack_user_id for e in (await svc.preview("topic:launch")).employees] == ["U06FIN"]


async def test_a_reaction_retried_by_the_platform_counts_once(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    class Recorder:
        channel = CHANNEL
        capabilities = CAPABILITIES

        async def send(self, delivery: Delivery) -> SendResult:
            return SendResult(platform_message_id=f"1767600000.{delivery.outbox_id:06d}")

    rt.add_sender(Recorder())
    await _two_updates(svc, content, clock)
    await rt.worker.drain()
    row = (await outbox_rows(rt, address="U01ANNA"))[0]
    ts = str(row.platform_message_id)
    for _ in range(3):  # Slack retries the same event id
        await svc.reaction(
            event_key="Ev0001", slack_user="U01ANNA", channel="D01", ts=ts, reaction="tada"
        )
    assert not await svc.reaction(
        event_key="Ev0002", slack_user="U01ANNA", channel="D01", ts="1.2", reaction="x"
    )
    await svc.reaction(event_key="Ev0003", slack_user="U02BEN", channel="D02", ts=ts, reaction="+1")
    async with rt.db.session() as s:
        n = (await s.execute(select(func.count()).select_from(EngagementEvent))).scalar_one()
        rep = next(r for r in await reports(s) if r.key == "spring-launch")
    assert n == 2
    assert rep.reacted == 2 and rep.delivered == 3


async def test_a_button_of_an_update_someone_never_got_is_not_counted(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    await _two_updates(svc, content, clock)
    sent = await outbox_rows(rt, address="U02BEN")
    got_it = next(b for b in sent[0].payload["buttons"] if '"got_it"' in b["payload"])
    # Dan (sales) replays a support colleague's button
    res = await rt.engine.handle(say("U04DAN", "Got it", got_it["payload"], "x1"))
    assert "Noted" not in " ".join(r.text for r in res.replies)
    async with rt.db.session() as s:
        n = (await s.execute(select(func.count()).select_from(EngagementEvent))).scalar_one()
    assert n == 0
