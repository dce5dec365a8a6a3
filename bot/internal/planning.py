"""Planning: a scheduler round expands scheduled updates into one delivery per employee (due at
the scheduled wall-clock time in each one's time zone, or one channel post) and decides the due
ones in batches of employees, one transaction each.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.internal.audiences import (
    channel_selectors,
    fetch_external,
    resolve,
)
from bot.internal.base import BATCH, PLANNED, SENT, WEEK
from bot.internal.digests import Digests
from bot.internal.models import (
    Employee,
    Update,
    UpdateDelivery,
)
from bot.outreach.stats import RoundStats
from bot.storage.dialect import insert_for

log = logging.getLogger(__name__)


class Planning(Digests):
    """One scheduler round: expand scheduled updates into deliveries, decide the due ones,
    bundle the digests."""

    async def run_once(self, now: datetime | None = None) -> RoundStats:
        now = now or self.runtime.clock.now()
        stats = RoundStats()
        if self.config.team_digest:
            await self.ensure_team_digest(now)
        await self.expand(now, stats)
        await self.process_due(now, stats)
        await self.process_digests(now, stats)
        if stats.queued:
            self.runtime.worker.wake()
        return stats

    async def expand(self, now: datetime, stats: RoundStats) -> None:
        if not self.people_ready:
            stats.notes.append("waiting for the first people sync")
            return
        async with self.db.session() as s:
            ids = list(
                (
                    await s.execute(
                        select(Update.id)
                        .where(Update.status == "scheduled", Update.not_before <= now)
                        .order_by(Update.not_before, Update.id)
                    )
                ).scalars()
            )
        for uid in ids:
            stats.expanded += await self._expand_one(uid, now, stats)

    async def _expand_one(self, update_id: int, now: datetime, stats: RoundStats) -> int:
        async with self.db.session() as s:
            audience = (
                await s.execute(select(Update.audience).where(Update.id == update_id))
            ).scalar_one()
        external, notes = await fetch_external(channel_selectors(audience), self.directory)
        stats.notes += notes
        async with self.db.session() as s:
            q = select(Update).where(Update.id == update_id, Update.status == "scheduled")
            if self.db.is_postgres:
                q = q.with_for_update(skip_locked=True)
            u = (await s.execute(q)).scalar_one_or_none()
            if u is None:
                return 0
            rows: list[dict[str, Any]] = []
            if u.delivery == "channel":
                rows.append(self._row(u, None, self._due(u, None, now), now))
                rows[0]["address"] = u.channel_id
            else:
                res = await resolve(
                    s,
                    u.audience,
                    now=now,
                    new_hire_days=self.config.new_hire_days,
                    content_dir=self.content_dir,
                    external=external,
                )
                for emp in res.employees:
                    rows.append(self._row(u, emp, self._due(u, emp, now), now))
            if rows:
                ins = insert_for(self.db.is_postgres)
                await s.execute(
                    ins(UpdateDelivery).on_conflict_do_nothing(
                        index_elements=["update_id", "employee_id"]
                    ),
                    rows,
                )
            u.status, u.materialized_at, u.updated_at = "active", now, now
            if rows:
                log.info("update %s: %d deliveries planned", u.key, len(rows))
            else:
                log.warning("update %s: its audience %s reaches nobody", u.key, u.audience)
            return len(rows)

    def _row(self, u: Update, emp: Employee | None, due: datetime, now: datetime) -> dict[str, Any]:
        bodies = (u.content or {}).get("bodies") or {}
        lang = emp.language if emp is not None and emp.language in bodies else None
        return {
            "update_id": u.id,
            "employee_id": emp.id if emp is not None else None,
            "address": None,
            "status": PLANNED,
            "reason": None,
            "due_at": due,
            "deferred_count": 0,
            "important_pass": False,
            "language": lang or (u.content or {}).get("language"),
            "created_at": now,
        }

    def _due(self, u: Update, emp: Employee | None, now: datetime) -> datetime:
        if not u.scheduled_for:
            return now
        naive = datetime.fromisoformat(u.scheduled_for)
        tz = ZoneInfo(u.schedule_tz) if u.schedule_tz else self.tz_of(emp)
        return naive.replace(tzinfo=tz).astimezone(UTC)

    async def process_due(self, now: datetime, stats: RoundStats) -> None:
        async with self.db.session() as s:
            ids = await self._due_employees(s, PLANNED, now)
            posts = list(
                (
                    await s.execute(
                        select(UpdateDelivery.id).where(
                            UpdateDelivery.status == PLANNED,
                            UpdateDelivery.due_at <= now,
                            UpdateDelivery.employee_id.is_(None),
                        )
                    )
                ).scalars()
            )
        for i in range(0, len(ids), BATCH):
            await self._process_employees(ids[i : i + BATCH], now, stats)
        for did in posts:
            await self._process_channel_post(did, now, stats)

    async def _process_employees(self, ids: list[int], now: datetime, stats: RoundStats) -> None:
        """Decide the due deliveries of a batch of employees, in one transaction."""
        async with self.db.session() as s:
            by_id, due, cache = await self._due_batch(s, ids, PLANNED, now)
            if not by_id:
                return
            sent, important = await self._sent_this_week(s, list(by_id), now - WEEK)
            for eid, rows in due.items():
                await self._decide(
                    s, by_id[eid], rows, sent.get(eid, 0), important.get(eid, 0), now, stats, cache
                )

    async def _sent_this_week(
        self, s: AsyncSession, ids: list[int], since: datetime
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Updates sent to each employee since ``since``, and how many passed as important."""
        rows = (
            await s.execute(
                select(
                    UpdateDelivery.employee_id,
                    func.count(),
                    func.sum(case((UpdateDelivery.important_pass, 1), else_=0)),
                )
                .join(Update, Update.id == UpdateDelivery.update_id)
                .where(
                    UpdateDelivery.employee_id.in_(ids),
                    UpdateDelivery.status == SENT,
                    UpdateDelivery.sent_at > since,
                    Update.kind != "team_digest",
                )
                .group_by(UpdateDelivery.employee_id)
            )
        ).all()
        return (
            {int(e): int(n) for e, n, _ in rows},
            {int(e): int(i or 0) for e, _, i in rows},
        )
