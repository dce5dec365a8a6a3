"""The lifecycle charts: the ``funnel`` of contacts by their current stage, and
``transitions``, the stage moves a week (weeks start on Monday) by the stage moved to."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.lifecycle.config import DEFAULT_STAGES
from bot.lifecycle.models import StageTransition
from bot.stats.chart import Chart
from bot.stats.filters import Filters
from bot.stats.query import contact_filters, in_range, iso, utc_day
from bot.storage.models import Contact


async def funnel(s: AsyncSession, f: Filters, stages: Sequence[str] = DEFAULT_STAGES) -> Chart:
    q = select(Contact.lifecycle_stage, func.count()).group_by(Contact.lifecycle_stage)
    q = q.where(*contact_filters(f))
    got = {str(k): int(n) for k, n in await s.execute(q)}
    order = [*stages, *sorted(set(got) - set(stages))]
    return Chart(
        "funnel",
        "Lifecycle funnel: contacts by stage (now)",
        ["stage", "contacts"],
        [[st, got.get(st, 0)] for st in order],
        kind="bar",
        note="Today's stage of every contact; the date range does not apply.",
        summary={"contacts": sum(got.values())},
    )


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def transitions(s: AsyncSession, f: Filters, stages: Sequence[str] = DEFAULT_STAGES) -> Chart:
    d = utc_day(s, StageTransition.occurred_at).label("d")
    q = select(d, StageTransition.to_stage, func.count()).where(
        in_range(StageTransition.occurred_at, f)
    )
    people = contact_filters(f)
    if people:
        q = q.where(StageTransition.contact_id.in_(select(Contact.id).where(*people)))
    weeks: dict[str, Counter[str]] = defaultdict(Counter)
    for day, to, n in await s.execute(q.group_by(d, StageTransition.to_stage)):
        weeks[_week(date.fromisoformat(iso(day))).isoformat()][str(to)] += int(n)
    seen = {st for c in weeks.values() for st in c}
    cols = [st for st in stages if st in seen] + sorted(seen - set(stages))
    all_weeks = sorted({_week(date.fromisoformat(d)).isoformat() for d in f.days})
    return Chart(
        "transitions",
        "Lifecycle: stage moves a week, by new stage",
        ["week", *cols],
        [[w, *(weeks[w][c] for c in cols)] for w in all_weeks],
        kind="stacked",
        note="Weeks start on Monday.",
        summary={"transitions": sum(sum(c.values()) for c in weeks.values())},
    )
