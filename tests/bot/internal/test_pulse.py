"""Pulse surveys: buttons to an audience, anonymous answers, results with a minimum group size."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal.employees import EmployeeRecord, upsert_employees
from bot.internal.models import EngagementEvent, PulseAnswer, PulseSurvey, Update
from bot.internal.reports import pulse_results, pulse_results_for
from bot.internal.service import InternalService
from bot.runtime import Runtime
from bot.types import Inbound
from tests.bot.internal.conftest import Content, outbox_rows, step


async def test_pulse_results_hide_groups_under_the_minimum_size(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    # 6 in support, 5 in sales, 1 in legal answer; groups need at least 5 answers
    people = [(f"US{i}", "Support") for i in range(6)]
    people += [(f"UA{i}", "Sales") for i in range(5)]
    people += [("UL0", "Legal")]
    async with rt.db.session() as s:
        await upsert_employees(
            s,
            [
                EmployeeRecord(slack_user_id=sid, name=sid, department=d, timezone="Europe/Berlin")
                for sid, d in people
            ],
            now=clock.now(),
        )
    content.update(
        "pulse-roadmap",
        """
        title: Quick pulse
        audience: everyone, -department:engineering
        schedule: 2026-01-05 10:00
        pulse:
          question: How clear is this quarter's plan?
          options: ["1", "2", "3", "4", "5"]
          anonymous: true
          min_group_size: 5
        """,
        "One question, one click.",
    )
    await svc.sync_files()
    await step(svc, clock, datetime(2026, 1, 5, 15, 0, tzinfo=UTC))
    sent = {r.address: r for r in await outbox_rows(rt)}
    assert "US0" in sent and "UL0" in sent and "U06FIN" not in sent
    buttons = sent["US0"].payload["buttons"]
    assert [b["title"] for b in buttons] == ["1", "2", "3", "4", "5"]

    # people answer by pressing the buttons (the payload comes back through the engine)
    answers = {f"US{i}": "4" for i in range(6)} | {f"UA{i}": "2" for i in range(5)}
    answers["UL0"] = "1"
    for sid, value in answers.items():
        b = next(b for b in sent[sid].payload["buttons"] if b["title"] == value)
        res = await rt.engine.handle(
            Inbound(channel="slack", external_id=sid, text=b["title"], payload=b["payload"])
        )
        assert "anonymously" in res.replies[0].text
    # pressing again changes the answer, never counts twice
    b = next(b for b in sent["US0"].payload["buttons"] if b["title"] == "5")
    await rt.engine.handle(
        Inbound(channel="slack", external_id="US0", text="5", payload=b["payload"])
    )

    async with rt.db.session() as s:
        uid = (await s.execute(select(Update.id).where(Update.key == "pulse-roadmap"))).scalar_one()
        results = await pulse_results_for(s, uid)
        stored = (await s.execute(select(PulseAnswer))).scalars().all()
        events = (
            (await s.execute(select(EngagementEvent).where(EngagementEvent.update_id == uid)))
            .scalars()
            .all()
        )
    assert results is not None
    assert results.responses == 12
    assert results.overall == {"1": 1, "2": 5, "3": 0, "4": 5, "5": 1}
    # legal (1 answer) is hidden; sales is hidden too, or total minus support would reveal legal
    assert "Legal" not in results.groups
    assert list(results.groups) == ["Support"]
    assert results.groups["Support"] == {"1": 0, "2": 0, "3": 0, "4": 5, "5": 1}
    assert results.hidden_groups == 2
    # anonymous: no person is stored with the answers or the engagement events
    assert all(a.employee_id is None and not a.respondent.startswith("e") for a in stored)
    assert all(e.employee_id is None and e.value is None for e in events)


def test_no_results_below_the_minimum_and_no_group_revealed_by_subtraction() -> None:
    survey = PulseSurvey(
        question="q", options=["yes", "no"], min_group_size=3, group_by="department"
    )
    few = pulse_results(survey, [("A", "yes"), ("A", "no")])
    assert few.overall is None and few.groups == {}
    ab = pulse_results(survey, [("A", "yes")] * 3 + [("B", "no")] * 3 + [("C", "no")])
    shown = sum(sum(d.values()) for d in ab.groups.values())
    assert "C" not in ab.groups and (ab.responses - shown == 0 or ab.responses - shown >= 3)
    big = pulse_results(survey, [("A", "yes")] * 3 + [("B", "no")] * 4)
    assert set(big.groups) == {"A", "B"} and big.hidden_groups == 0
