"""The satisfaction charts: ``csat``, the "was this helpful?" answers by day (stored on the
answer they rate), and ``handoff_csat``, the 1-5 ratings after a resolved handoff."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import Handoff
from bot.stats.chart import Chart
from bot.stats.filters import Filters
from bot.stats.query import handoff_filters, iso, message_filters, ratio, rounded, utc_day
from bot.storage.models import Message


async def csat(s: AsyncSession, f: Filters) -> Chart:
    d = utc_day(s, Message.created_at).label("d")
    q = (
        select(d, Message.feedback, func.count())
        .where(Message.feedback.is_not(None), *message_filters(f))
        .group_by(d, Message.feedback)
    )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for day, fb, n in await s.execute(q):
        counts[iso(day)][str(fb)] += int(n)
    rows: list[list[Any]] = []
    for day in f.days:
        yes, no = counts[day]["helpful"], counts[day]["not_helpful"]
        rows.append([day, yes, no, rounded(ratio(yes, yes + no), 4)])
    yes = sum(r[1] for r in rows)
    no = sum(r[2] for r in rows)
    return Chart(
        "csat",
        'CSAT: "Was this helpful?"',
        ["day", "helpful", "not_helpful", "helpful_share"],
        rows,
        kind="stacked",
        summary={
            "helpful": yes,
            "not_helpful": no,
            "helpful_share": rounded(ratio(yes, yes + no), 4),
        },
    )


async def handoff_csat(s: AsyncSession, f: Filters) -> Chart:
    q = select(Handoff.csat, func.count()).where(Handoff.csat.is_not(None), *handoff_filters(f))
    got = {int(k or 0): int(n) for k, n in await s.execute(q.group_by(Handoff.csat))}
    rows: list[list[Any]] = [[score, got.get(score, 0)] for score in range(1, 6)]
    n = sum(got.values())
    avg = sum(k * v for k, v in got.items()) / n if n else None
    return Chart(
        "handoff_csat",
        "Ratings after a handoff (1-5)",
        ["score", "ratings"],
        rows,
        kind="bar",
        summary={"ratings": n, "average": rounded(avg, 2)},
    )
