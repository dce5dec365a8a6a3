"""The ``internal`` chart: internal updates created in the range, the people reached and
engaged (a reaction or a button; Slack has no read receipts)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.stats.chart import Chart
from bot.stats.filters import Filters
from bot.stats.query import in_range, ratio, rounded


async def internal(s: AsyncSession, f: Filters) -> Chart:
    """The figures of ``concierge internal report`` (bot.internal.reports.update_report), in
    three grouped statements for every update of the range."""
    from bot.internal.models import EngagementEvent, Update, UpdateDelivery

    updates = (
        await s.execute(
            select(Update.id, Update.key, Update.title)
            .where(in_range(Update.created_at, f))
            .order_by(Update.created_at, Update.id)
            .limit(500)
        )
    ).all()
    ids = [u[0] for u in updates]
    planned: Counter[int] = Counter()
    reached: Counter[int] = Counter()
    engaged: Counter[int] = Counter()
    if ids:
        q = (
            select(UpdateDelivery.update_id, UpdateDelivery.status, func.count())
            .where(UpdateDelivery.update_id.in_(ids))
            .group_by(UpdateDelivery.update_id, UpdateDelivery.status)
        )
        for uid, status, n in await s.execute(q):
            planned[uid] += n
            if status in ("sent", "bundled"):  # directly, or in a digest
                reached[uid] += n
        people = (
            select(EngagementEvent.update_id, func.count(distinct(EngagementEvent.employee_id)))
            .where(
                EngagementEvent.update_id.in_(ids),
                EngagementEvent.employee_id.is_not(None),
                EngagementEvent.kind != "reaction_removed",
            )
            .group_by(EngagementEvent.update_id)
        )
        engaged.update(dict((await s.execute(people)).all()))  # one row an update
        anonymous = (
            select(EngagementEvent.update_id, func.count())
            .where(
                EngagementEvent.update_id.in_(ids),
                EngagementEvent.employee_id.is_(None),
                EngagementEvent.kind == "pulse_answer",
            )
            .group_by(EngagementEvent.update_id)
        )
        engaged.update(dict((await s.execute(anonymous)).all()))  # one row an update
    rows: list[list[Any]] = [
        [
            key,
            title,
            planned[uid],
            reached[uid],
            engaged[uid],
            rounded(ratio(engaged[uid], reached[uid]), 4),
        ]
        for uid, key, title in updates
    ]
    return Chart(
        "internal",
        "Internal updates: reach and engagement",
        ["update", "title", "planned", "reached", "engaged", "engagement_rate"],
        rows,
        kind="bar",
        note="Engaged: reacted or pressed a button (Slack has no read receipts). "
        "Language and channel filters do not apply.",
        summary={
            "updates": len(rows),
            "reached": sum(r[3] for r in rows),
            "engaged": sum(r[4] for r in rows),
        },
    )
