"""The handoff charts: ``handoffs`` opened in the range by reason, and ``handoff_times``, the
minutes to the first staff answer and to resolution (median and 90th percentile, of those
answered / resolved)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import Handoff
from bot.stats.chart import Chart
from bot.stats.filters import Filters
from bot.stats.query import handoff_filters, memo, minutes, quantile, rounded

TIME_COLUMNS = (
    "reason",
    "handoffs",
    "first_response_median_min",
    "first_response_p90_min",
    "resolution_median_min",
    "resolution_p90_min",
)


async def _handoff_rows(s: AsyncSession, f: Filters) -> list[Any]:
    """(reason, minutes to the first answer, minutes to resolution) of each handoff."""

    async def compute() -> list[Any]:
        q = select(
            Handoff.reason,
            minutes(s, Handoff.first_response_at, Handoff.created_at),
            minutes(s, Handoff.resolved_at, Handoff.created_at),
        ).where(*handoff_filters(f))
        return list((await s.execute(q)).all())

    return await memo(s, ("handoff_rows", f), compute)


async def handoffs(s: AsyncSession, f: Filters) -> Chart:
    q = (
        select(
            Handoff.reason,
            func.count(),
            func.count(Handoff.first_response_at),
            func.count(Handoff.resolved_at),
        )
        .where(*handoff_filters(f))
        .group_by(Handoff.reason)
    )
    got = [(str(r), int(n), int(a), int(d)) for r, n, a, d in await s.execute(q)]
    return Chart(
        "handoffs",
        "Handoffs by reason",
        ["reason", "handoffs"],
        [[r, n] for r, n, _, _ in sorted(got, key=lambda x: (-x[1], x[0]))],
        kind="bar",
        summary={
            "handoffs": sum(x[1] for x in got),
            "answered": sum(x[2] for x in got),
            "resolved": sum(x[3] for x in got),
        },
    )


async def handoff_times(s: AsyncSession, f: Filters) -> Chart:
    rows = await _handoff_rows(s, f)
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        groups[str(r[0])].append(r)
        groups["all"].append(r)
    out: list[list[Any]] = []
    for reason in sorted(groups, key=lambda k: (k == "all", k)):
        g = groups[reason]
        first = [max(0.0, float(r[1])) for r in g if r[1] is not None]
        done = [max(0.0, float(r[2])) for r in g if r[2] is not None]
        out.append(
            [
                reason,
                len(g),
                rounded(quantile(first, 0.5)),
                rounded(quantile(first, 0.9)),
                rounded(quantile(done, 0.5)),
                rounded(quantile(done, 0.9)),
            ]
        )
    return Chart(
        "handoff_times",
        "Handoffs: minutes to the first answer and to resolution",
        [*TIME_COLUMNS],
        out,
        kind="bar",
        note="Of the handoffs opened in the range that were answered / resolved.",
    )
