"""The rules for due deliveries: who is reached (through ``choose_reach``), the working-hours
window, the weekly cap, important updates, low priority held for the digest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine import Reply
from bot.engine.writer import write
from bot.internal.base import HELD, PLANNED, PRIORITY, SENT, SKIPPED, WEEK, ServiceBase, _Cache
from bot.internal.company_calendar import CompanyCalendar
from bot.internal.config import WEEKDAYS
from bot.internal.models import (
    Employee,
    Update,
    UpdateDelivery,
)
from bot.outreach.reach import (
    DEFER,
    SERVICE,
    SKIP,
    Decision,
    Person,
    Reach,
    capabilities,
    choose_reach,
)
from bot.outreach.stats import RoundStats

log = logging.getLogger(__name__)


COLLEAGUE = Person(consents={})  # no consent records for employees: service messages go


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """The company calendar as ``choose_reach``'s window, seen from one time zone."""

    calendar: CompanyCalendar
    tz: ZoneInfo

    def closed(self, when: datetime) -> str | None:
        return self.calendar.closed_reason(when.astimezone(self.tz))

    def next_open(self, when: datetime) -> datetime:
        return self.calendar.next_open(when.astimezone(self.tz)).astimezone(UTC)


class Rules(ServiceBase):
    """The guard rails of one due delivery: skip, defer, hold for the digest, or send."""

    def reach(
        self,
        address: str | None,
        tz: ZoneInfo,
        now: datetime,
        *,
        hold: str | None = None,
        window: CalendarWindow | None = None,
    ) -> Decision:
        """The one decision (``choose_reach``) for a message to ``address`` on the employees'
        channel: a hold of this feature, the channel's capability (push), the working-hours
        window in ``tz``. Internal updates are service messages."""
        options = [Reach(self.channel, address)] if self.channel and address else []
        caps = capabilities(self.runtime.senders)
        if self.channel and self.channel_capabilities and self.channel not in caps:
            caps[self.channel] = self.channel_capabilities  # declared by its adapter
        return choose_reach(
            options,
            COLLEAGUE,
            purpose=SERVICE,
            capabilities=caps,
            now=now,
            hold=hold,
            window=window or CalendarWindow(self.calendar, tz),
        )

    @staticmethod
    def hold_reason(emp: Employee, u: Update) -> str | None:
        """Why this update is not for this employee (before any channel or window)."""
        if u.status == "cancelled":
            return "update cancelled"
        if not emp.active:
            return "employee is no longer active"
        if u.topic and u.topic in (emp.opted_down or []) and not u.important:
            return f"muted topic {u.topic}"
        return None

    async def _decide(
        self,
        s: AsyncSession,
        emp: Employee,
        rows: list[tuple[UpdateDelivery, Update]],
        sent_week: int,
        important_week: int,
        now: datetime,
        stats: RoundStats,
        cache: _Cache,
    ) -> None:
        """One employee's due deliveries: skip, defer, hold for the digest, or send."""
        ordered = sorted(
            rows,
            key=lambda r: (
                not r[1].important,
                PRIORITY.get(r[1].priority, 1),
                r[0].due_at,
                r[0].id,
            ),
        )
        cap = self.config.weekly_cap
        if emp.weekly_cap is not None:
            cap = min(cap, emp.weekly_cap)
        tz = self.tz_of(emp)
        window = CalendarWindow(self.calendar, tz)  # the calendar looked up once per employee
        for d, u in ordered:
            hold = self.hold_reason(emp, u)
            decision = self.reach(emp.slack_user_id, tz, now, hold=hold, window=window)
            if _not_now(d, decision, stats):
                continue
            if u.kind == "team_digest":
                await self._send_delivery(s, emp, d, u, now, cache)
                stats.sent += 1
            elif u.priority == "low" and self.config.digest_mode and u.kind == "update":
                self._hold(d, emp, now, "low priority: goes in the weekly digest")
                stats.held += 1
            elif u.important and important_week < self.config.important_weekly_cap:
                d.important_pass = True
                await self._send_delivery(s, emp, d, u, now, cache)
                important_week += 1
                sent_week += 1
                stats.sent += 1
            elif sent_week >= cap:
                why = f"weekly cap {cap} reached"
                if u.important:
                    why += f" (and {self.config.important_weekly_cap} important this week)"
                self._hold(d, emp, now, why)
                stats.held += 1
            else:
                await self._send_delivery(s, emp, d, u, now, cache)
                sent_week += 1
                stats.sent += 1

    def _hold(self, d: UpdateDelivery, emp: Employee, now: datetime, reason: str) -> None:
        d.status, d.reason = HELD, reason
        d.due_at = self.next_digest(now.astimezone(self.tz_of(emp))).astimezone(UTC)

    def next_digest(self, local: datetime) -> datetime:
        """The next digest moment at or after ``local`` (in its zone)."""
        return _next_weekday_time(local, self.config.digest_day, self.config.digest_time)

    async def _send_delivery(
        self,
        s: AsyncSession,
        emp: Employee,
        d: UpdateDelivery,
        u: Update,
        now: datetime,
        cache: _Cache | None = None,
    ) -> None:
        lang = d.language or emp.language
        message = cache.messages.get((u.id, lang)) if cache is not None else None
        if message is None:
            message = self.renderer.update(await self.item(s, u, lang))
            if cache is not None:
                cache.messages[(u.id, lang)] = message
        d.outbox_id = await self.send_to(
            s,
            emp,
            message,
            key=f"internal:update:{u.id}:{emp.id}",
            now=now,
            language=d.language,
            cache=cache,
        )
        d.status, d.sent_at = SENT, now
        d.reason = "passed the weekly cap (important)" if d.important_pass else None

    async def _process_channel_post(
        self, delivery_id: int, now: datetime, stats: RoundStats
    ) -> None:
        async with self.db.session() as s:
            q = (
                select(UpdateDelivery, Update)
                .join(Update)
                .where(UpdateDelivery.id == delivery_id, UpdateDelivery.status == PLANNED)
            )
            if self.db.is_postgres:
                q = q.with_for_update(skip_locked=True, of=UpdateDelivery)
            row = (await s.execute(q)).first()
            if row is None:
                return
            d, u = row
            hold = "update cancelled" if u.status == "cancelled" else None
            decision = self.reach(d.address, self.calendar.tz, now, hold=hold)
            if _not_now(d, decision, stats):
                return
            message = self.renderer.update(await self.item(s, u, d.language))
            post = Reply(
                channel=str(decision.channel),
                address=str(d.address),
                message=message,
                idempotency_key=f"internal:update:{u.id}:channel",
            )
            [ids] = await write(s, [post], now=now)
            d.outbox_id = ids[0] if ids else None
            d.status, d.sent_at = SENT, now
            stats.channel_posts += 1


def _not_now(d: UpdateDelivery, decision: Decision, stats: RoundStats) -> bool:
    """Skip or defer ``d`` as ``decision`` says; False when it says to send now."""
    if decision.outcome == SKIP:
        d.status, d.reason = SKIPPED, decision.reason
        stats.skipped[str(decision.reason)] += 1
        return True
    if decision.outcome == DEFER:
        assert decision.until is not None
        d.due_at = decision.until
        d.deferred_count += 1
        d.reason = f"deferred: {decision.reason}"
        stats.deferred += 1
        return True
    return False


def _next_weekday_time(local: datetime, day: str, at: time) -> datetime:
    target = WEEKDAYS.index(day)
    d: date = local.date() + timedelta(days=(target - local.weekday()) % 7)
    cand = datetime.combine(d, at, tzinfo=local.tzinfo)
    if cand < local:
        cand += WEEK
    return cand
