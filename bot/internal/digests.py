"""Digests: held deliveries bundled into one message per employee at the digest time, and the
weekly support & sales digest (``team_digest``).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.internal.base import BATCH, BUNDLED, HELD, SKIPPED
from bot.internal.config import WEEKDAYS
from bot.internal.content import (
    earliest_utc,
)
from bot.internal.models import (
    Employee,
    Update,
)
from bot.internal.render import Item
from bot.internal.rules import Rules
from bot.outreach.reach import DEFER, SKIP
from bot.outreach.stats import RoundStats

log = logging.getLogger(__name__)


class Digests(Rules):
    """Held deliveries bundled into one digest per employee; the weekly support & sales digest."""

    async def process_digests(self, now: datetime, stats: RoundStats) -> None:
        async with self.db.session() as s:
            ids = await self._due_employees(s, HELD, now)
        for i in range(0, len(ids), BATCH):
            await self._digests_for(ids[i : i + BATCH], now, stats)

    async def _digests_for(self, ids: list[int], now: datetime, stats: RoundStats) -> None:
        """One digest message per employee of a batch, bundling their held deliveries."""
        async with self.db.session() as s:
            by_id, held, cache = await self._due_batch(s, ids, HELD, now)
            items: dict[tuple[int, str | None], Item] = {}
            for eid, rows in held.items():
                emp = by_id[eid]
                keep = [(d, u) for d, u in rows if u.status != "cancelled" and emp.active]
                for d, u in rows:
                    if (d, u) not in keep:
                        d.status, d.reason = SKIPPED, "update cancelled or employee inactive"
                if not keep:
                    continue
                decision = self.reach(emp.slack_user_id, self.tz_of(emp), now)
                if decision.outcome == SKIP:
                    continue  # no account on a channel that can write first: they wait
                if decision.outcome == DEFER:
                    assert decision.until is not None
                    for d, _ in keep:
                        d.due_at = decision.until
                    stats.deferred += len(keep)
                    continue
                lang = emp.language
                bundle = []
                for d, u in keep:
                    k = (u.id, d.language or lang)
                    if k not in items:
                        items[k] = await self.item(s, u, k[1])
                    bundle.append(items[k])
                message = self.renderer.digest(bundle, lang or self.texts.default_language)
                key = f"internal:digest:{emp.id}:{min(d.id for d, _ in keep)}"
                oid = await self.send_to(
                    s, emp, message, key=key, now=now, language=lang, cache=cache
                )
                for d, _ in keep:
                    d.status, d.digest_outbox_id = BUNDLED, oid
                    d.sent_at = now
                stats.digests += 1

    # --- the support & sales digest ----------------------------------------------------------
    async def ensure_team_digest(self, now: datetime) -> Update | None:
        """Create this week's support & sales digest (once), due on the configured day."""

        tz = self.calendar.tz
        local = now.astimezone(tz)
        monday = local.date() - timedelta(days=local.weekday())
        slot = datetime.combine(
            monday + timedelta(days=WEEKDAYS.index(self.config.team_digest_day)),
            self.config.team_digest_time,
            tzinfo=tz,
        )
        if local >= slot + timedelta(days=1):
            return None  # too late for this week's digest
        year, week, _ = monday.isocalendar()
        key = f"team-digest-{year}-w{week:02d}"
        try:
            return await self._create_team_digest(key, monday, slot, now)
        except IntegrityError:  # another process created it a moment ago
            return None

    async def _create_team_digest(
        self, key: str, monday: date, slot: datetime, now: datetime
    ) -> Update | None:
        from bot.internal.reports import team_digest_data

        tz = self.calendar.tz
        year, week, _ = monday.isocalendar()
        async with self.db.session() as s:
            if (await s.execute(select(Update.id).where(Update.key == key))).first():
                return None
            has_people = (
                await s.execute(select(Employee.id).where(Employee.active).limit(1))
            ).first()
            if not has_people:
                return None
            start = datetime.combine(monday - timedelta(days=7), time(0), tzinfo=tz)
            end = datetime.combine(monday, time(0), tzinfo=tz)
            data = await team_digest_data(
                s,
                since=start.astimezone(UTC),
                until=end.astimezone(UTC),
                runtime=self.runtime,
                channel=self.channel,
            )
            data["start"], data["end"] = str(start.date()), str((end - timedelta(days=1)).date())
            naive = slot.replace(tzinfo=None).isoformat(timespec="minutes")
            u = Update(
                key=key,
                kind="team_digest",
                title=f"Support & sales digest {year}-W{week:02d}",
                source="built-in",
                content={"team": data, "titles": {}, "bodies": {}, "language": "en"},
                audience=self.config.team_digest_audience,
                delivery="dm",
                goal="customer_satisfaction",
                priority="high",
                important=False,
                scheduled_for=naive,
                schedule_tz=None,
                not_before=earliest_utc(naive, None),
                status="scheduled",
                created_at=now,
                updated_at=now,
            )
            s.add(u)
            await s.flush()
            return u
