"""Handoff figures for ``/metrics``: counts by reason and status, median times, CSAT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import Handoff


async def handoff_metrics(s: AsyncSession) -> dict[str, Any]:
    async def count_by(column: Any) -> dict[Any, int]:
        return dict((await s.execute(select(column, func.count()).group_by(column))).all())

    by_reason = await count_by(Handoff.reason)
    by_status = await count_by(Handoff.status)
    rows = (
        await s.execute(
            select(
                Handoff.created_at,
                Handoff.first_response_at,
                Handoff.resolved_at,
                Handoff.csat,
            )
        )
    ).all()
    first = sorted((f - c).total_seconds() for c, f, _, _ in rows if f is not None)
    resolve = sorted((r - c).total_seconds() for c, _, r, _ in rows if r is not None)
    csat = [x for *_, x in rows if x is not None]
    return {
        "by_reason": by_reason,
        "by_status": by_status,
        "first_response_median_s": first[len(first) // 2] if first else None,
        "resolution_median_s": resolve[len(resolve) // 2] if resolve else None,
        "csat_average": round(sum(csat) / len(csat), 2) if csat else None,
        "csat_count": len(csat),
    }
