"""The dashboard's figures on a known history (tests/auxil/dashboard_seed.py), on SQLite and
PostgreSQL: exact numbers."""

from __future__ import annotations

from datetime import date

import pytest

from bot.prompts.experiments import difference_ci
from bot.stats import CHARTS, FilterError, Filters
from bot.storage.db import Database
from tests.auxil.dashboard_seed import DAY1, DAY2, seed

RANGE = Filters(DAY1, DAY2)


async def chart(db: Database, name: str, f: Filters = RANGE) -> tuple[list[list[object]], dict]:  # type: ignore[type-arg]
    async with db.session() as s:
        c = await CHARTS[name](s, f)
    return c.rows, c.summary


async def test_conversations_containment_outcomes(db: Database) -> None:
    await seed(db)
    rows, summary = await chart(db, "conversations")
    assert rows == [["2026-03-02", 2, 5], ["2026-03-03", 2, 4]]
    assert summary == {"conversations": 3, "customer_messages": 9}
    rows, summary = await chart(db, "containment")
    assert rows == [["2026-03-02", 2, 1, 1, 0.5], ["2026-03-03", 2, 1, 1, 0.5]]
    assert summary["containment_rate"] == 0.5
    rows, summary = await chart(db, "outcomes")
    # a turn counts once: the answer and its "was this helpful?", a flow's three messages
    assert rows == [["2026-03-02", 2, 1, 1, 1], ["2026-03-03", 3, 0, 1, 0]]
    assert summary["turns"] == 9 and summary["answered_share"] == round(5 / 9, 4)


async def test_filters_by_language_and_channel(db: Database) -> None:
    await seed(db)
    de = Filters(DAY1, DAY2, language="de")
    assert (await chart(db, "conversations", de))[0] == [["2026-03-02", 1, 2], ["2026-03-03", 0, 0]]
    assert (await chart(db, "outcomes", de))[0] == [
        ["2026-03-02", 0, 0, 1, 1],
        ["2026-03-03", 0, 0, 0, 0],
    ]
    web = Filters(DAY1, DAY2, channel="web")
    assert (await chart(db, "handoffs", web))[0] == [["unsure", 1]]
    assert (await chart(db, "funnel", Filters(DAY1, DAY2, language="de")))[0][2] == ["purchase", 1]
    one_day = Filters(DAY2, DAY2)
    assert (await chart(db, "conversations", one_day))[0] == [["2026-03-03", 2, 4]]


async def test_handoffs_and_satisfaction(db: Database) -> None:
    await seed(db)
    rows, summary = await chart(db, "handoffs")
    assert rows == [["asked", 1], ["unsure", 1]]
    assert summary == {"handoffs": 2, "answered": 2, "resolved": 1}
    rows, _ = await chart(db, "handoff_times")
    assert rows == [
        ["asked", 1, 10.0, 10.0, 60.0, 60.0],
        ["unsure", 1, 30.0, 30.0, None, None],
        ["all", 2, 20.0, 28.0, 60.0, 60.0],
    ]
    rows, summary = await chart(db, "csat")
    assert rows == [["2026-03-02", 1, 0, 1.0], ["2026-03-03", 0, 1, 0.0]]
    assert summary["helpful_share"] == 0.5
    rows, summary = await chart(db, "handoff_csat")
    assert rows == [[1, 0], [2, 0], [3, 0], [4, 0], [5, 1]]
    assert summary == {"ratings": 1, "average": 5.0}


async def test_lifecycle_and_prompts(db: Database) -> None:
    await seed(db)
    rows, summary = await chart(db, "funnel")
    assert rows[:4] == [["awareness", 1], ["consideration", 1], ["purchase", 2], ["onboarding", 0]]
    assert summary == {"contacts": 4}
    rows, summary = await chart(db, "transitions")
    assert rows == [["2026-03-02", 1, 2]] and summary == {"transitions": 3}
    rows, _ = await chart(db, "prompts")
    ci = difference_ci(1, 2, 1, 2)
    assert ci is not None
    assert rows == [["cart", 2, 1, 2, 1, 0.5, 2, 1, 0.5, 0.0, round(ci.low, 4), round(ci.high, 4)]]
    rows, _ = await chart(db, "prompt_skips")
    assert rows == [["cart", "holdout", 2], ["cart", "quiet_hours", 1]]
    rows, summary = await chart(db, "internal")
    assert rows == [["spring", "Spring menu", 3, 2, 1, 0.5]]
    assert summary == {"updates": 1, "reached": 2, "engaged": 1}


def test_filter_parsing() -> None:
    today = date(2026, 3, 31)
    f = Filters.parse({}, today)
    assert (f.start, f.end) == (date(2026, 3, 2), today)
    f = Filters.parse({"start": "2026-03-01", "end": "2026-03-02", "language": "de"}, today)
    assert f.days == ["2026-03-01", "2026-03-02"] and f.language == "de"
    with pytest.raises(FilterError, match="YYYY-MM-DD"):
        Filters.parse({"start": "yesterday"}, today)
    with pytest.raises(FilterError, match="before"):
        Filters.parse({"start": "2026-03-05", "end": "2026-03-01"}, today)
    with pytest.raises(FilterError, match="at most"):
        Filters.parse({"start": "2020-01-01"}, today)
    with pytest.raises(FilterError, match="language"):
        Filters.parse({"language": "en'; drop"}, today)


async def test_csv_export_is_the_chart(db: Database) -> None:
    await seed(db)
    async with db.session() as s:
        c = await CHARTS["handoff_times"](s, RANGE)
    assert c.csv().splitlines() == [
        "reason,handoffs,first_response_median_min,first_response_p90_min,"
        "resolution_median_min,resolution_p90_min",
        "asked,1,10,10,60,60",
        "unsure,1,30,30,,",
        "all,2,20,28,60,60",
    ]


async def test_closed_days_are_stored_once_and_today_is_live(db: Database) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from bot.stats import DailyStat
    from bot.storage.models import Contact, Conversation, Message

    ids = await seed(db)
    now = datetime.now(UTC)
    async with db.session() as s:
        conv = (
            await s.execute(select(Conversation).where(Conversation.contact_id == ids["c1"]))
        ).scalar_one()
        c1 = await s.get(Contact, ids["c1"])
        assert c1 is not None
        for direction, meta in (("in", {}), ("out", {"policy": "faq", "fallback": "clarify"})):
            s.add(
                Message(conversation_id=conv.id, contact_id=c1.id, direction=direction,
                        sender="user" if direction == "in" else "bot", channel="web",
                        text="today", language="en", meta=meta, created_at=now)
            )  # fmt: skip
    f = Filters(DAY1, now.date())
    rows, _ = await chart(db, "conversations", f)
    assert rows[:2] == [["2026-03-02", 2, 5], ["2026-03-03", 2, 4]]
    assert rows[-1] == [now.date().isoformat(), 1, 1]  # today: counted from the messages
    assert sum(r[1] for r in rows) == 5
    rows, summary = await chart(db, "outcomes", f)
    assert rows[-1] == [now.date().isoformat(), 0, 1, 0, 0]
    assert summary["turns"] == 10
    async with db.session() as s:
        stored = (await s.execute(select(func.count()).select_from(DailyStat))).scalar_one()
        days = (await s.execute(select(func.count(func.distinct(DailyStat.day))))).scalar_one()
    # every closed day (ended 10 minutes ago), marked once; today is not
    assert days in ((now.date() - DAY1).days, (now.date() - DAY1).days - 1)
    # asked again: the same figures, nothing stored twice
    assert (await chart(db, "conversations", f))[0][:2] == [
        ["2026-03-02", 2, 5],
        ["2026-03-03", 2, 4],
    ]
    async with db.session() as s:
        assert (await s.execute(select(func.count()).select_from(DailyStat))).scalar_one() == stored
