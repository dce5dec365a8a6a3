"""bot.internal.engagement: events counted once, topics named in free text."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.internal.models import EngagementEvent, Update
from bot.internal.service import InternalService
from bot.runtime import Runtime
from tests.bot.internal.conftest import Content


async def test_an_event_key_is_recorded_once(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update("menu", "title: Lunch menu\naudience: everyone")
    await svc.sync_files()
    async with rt.db.session() as s:
        uid = (await s.execute(select(Update.id))).scalar_one()
        emp = await svc.employee_by_slack(s, "U01ANNA")
        assert emp is not None
        first = await svc.record(
            s,
            update_id=uid,
            employee_id=emp.id,
            kind="click",
            value="more",
            event_key="k1",
            now=clock.now(),
        )
        again = await svc.record(
            s,
            update_id=uid,
            employee_id=emp.id,
            kind="click",
            value="more",
            event_key="k1",
            now=clock.now(),
        )
        assert (first, again) == (True, False)
    async with rt.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(EngagementEvent))).scalar() == 1


async def test_a_reaction_on_a_message_we_did_not_send_is_not_counted(
    svc: InternalService,
) -> None:
    assert not await svc.reaction(
        event_key="Ev1", slack_user="U01ANNA", channel="D01", ts="1.0", reaction="tada"
    )


def test_topic_of_prefers_the_longest_alias(svc: InternalService) -> None:
    assert svc.topic_of("any new faq topics?") == "faq"
    assert svc.topic_of("tell me about the launch", known=["launch"]) == "launch"
    assert svc.topic_of("hello") is None
