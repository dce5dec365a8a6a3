"""The internal-updates service: update files in, deliveries out, under the guard rails.

``run_once(now)`` is one scheduler round (clock-injectable):

1. *expand* scheduled updates into one delivery per employee, due at the scheduled wall-clock
   time in each employee's own time zone (or one channel post);
2. *decide* each due delivery: skip (inactive, muted topic), defer (holiday, day off, outside
   working hours), hold for the weekly digest (low priority, or the weekly cap reached; an
   ``important`` update passes the cap, within its own limit), or send through the outbox;
3. *bundle* held deliveries into one digest message per employee at the digest time;
4. create the weekly support & sales digest (``team_digest``) once a week.

Messages go out through the outbox under idempotency keys, so a round run twice, or by two
processes, never sends anything twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.contacts import resolve_identity
from bot.engine import Reply
from bot.engine.writer import write
from bot.internal.audiences import (
    Directory,
    Resolved,
    channel_selectors,
    fetch_external,
    resolve,
)
from bot.internal.company_calendar import CompanyCalendar
from bot.internal.config import WEEKDAYS, InternalSettings
from bot.internal.content import (
    ContentError,
    UpdateSpec,
    earliest_utc,
    load_folder,
    update_files,
)
from bot.internal.models import (
    Employee,
    EngagementEvent,
    PulseAnswer,
    PulseSurvey,
    Update,
    UpdateDelivery,
)
from bot.internal.render import Item, PlainRenderer, Renderer, Texts
from bot.outreach.stats import RoundStats
from bot.storage.db import Database
from bot.storage.dialect import insert_for
from bot.storage.models import Contact, Conversation, Identity
from bot.types import Outbound

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

PLANNED, SENT, HELD, BUNDLED, SKIPPED = "planned", "sent", "held", "bundled", "skipped"
BATCH = 200  # employees decided in one transaction
_PRIORITY = {"high": 0, "normal": 1, "low": 2}
WEEK = timedelta(days=7)


@dataclass
class _Cache:
    """What one batch looks up once: people, open conversations, rendered messages."""

    people: dict[str, tuple[Contact, Identity]] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    messages: dict[tuple[int, str | None], Outbound] = field(default_factory=dict)


class InternalService:
    """One per runtime (``bot.internal.service_of(runtime)``)."""

    def __init__(self, runtime: Runtime, config: InternalSettings) -> None:
        self.runtime = runtime
        self.config = config
        self.texts = Texts(runtime.responses, runtime.settings.default_language)
        self.renderer: Renderer = PlainRenderer(self.texts)
        self.directory: Directory | None = None
        # False while a people sync the platform promised has not run yet: updates wait for it
        self.people_ready = True
        self.channel = "slack"
        self._calendar: tuple[float, CompanyCalendar] | None = None
        self._files_seen: tuple[tuple[str, int], ...] | None = None

    # --- configuration -----------------------------------------------------------------------
    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def content_dir(self) -> Path:
        return self.runtime.settings.content_dir

    @property
    def company_tz(self) -> str:
        return self.calendar.timezone

    @property
    def calendar_path(self) -> Path:
        return self.config.calendar_file or self.content_dir / "updates" / "calendar.yml"

    @property
    def calendar(self) -> CompanyCalendar:
        """The company calendar, re-read when its file changes."""
        path = self.calendar_path
        mtime = path.stat().st_mtime if path.exists() else -1.0
        if self._calendar is None or self._calendar[0] != mtime:
            cal = CompanyCalendar.load(
                path,
                timezone=self.config.timezone or self.runtime.settings.default_timezone,
                working_hours=self.config.working_hours,
                working_days=self.config.working_days,
            )
            self._calendar = (mtime, cal)
        return self._calendar[1]

    def tz_of(self, emp: Employee | None) -> ZoneInfo:
        if emp is not None and emp.timezone:
            try:
                return ZoneInfo(emp.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return self.calendar.tz

    def secret(self) -> bytes:
        return self.runtime.secret_key.encode()

    # --- update files -------------------------------------------------------------------------
    async def sync_files(self, now: datetime | None = None) -> tuple[list[str], list[ContentError]]:
        """Load ``flows/internal/*.yml`` and ``updates/*.md`` into the database."""
        now = now or self.runtime.clock.now()
        specs, errors = load_folder(
            self.content_dir,
            self.runtime.settings.languages,
            self.runtime.settings.default_language,
        )
        for e in errors:
            log.error("internal update file: %s", e)
        keys = []
        async with self.db.session() as s:
            for spec in specs:
                await self.upsert_spec(s, spec, now)
                keys.append(spec.key)
        return keys, errors

    async def upsert_spec(self, s: AsyncSession, spec: UpdateSpec, now: datetime) -> Update:
        u = (await s.execute(select(Update).where(Update.key == spec.key))).scalar_one_or_none()
        digest = spec.digest()
        if u is not None and u.content_hash == digest:
            return u
        if u is not None and u.status not in ("draft", "scheduled"):
            log.warning("update %s was already sent: changes to %s ignored", u.key, spec.source)
            return u
        if u is None:
            u = Update(key=spec.key, created_at=now, status="draft")
            s.add(u)
        u.kind = spec.kind
        u.title = spec.title
        u.source = spec.source
        u.content = spec.content()
        u.content_hash = digest
        u.audience = spec.audience
        u.delivery = spec.delivery
        u.channel_id = spec.channel_id
        u.goal = spec.goal
        u.topic = spec.topic
        u.priority = spec.priority
        u.important = spec.important
        u.updated_at = now
        if spec.schedule:
            u.scheduled_for, u.schedule_tz = spec.schedule, spec.schedule_tz
            u.not_before = earliest_utc(spec.schedule, spec.schedule_tz)
            u.status = "scheduled"
        await s.flush()
        if spec.pulse is not None:
            survey = (
                await s.execute(select(PulseSurvey).where(PulseSurvey.update_id == u.id))
            ).scalar_one_or_none()
            if survey is None:
                survey = PulseSurvey(update_id=u.id, created_at=now)
                s.add(survey)
            survey.question = spec.pulse.question
            survey.options = spec.pulse.options
            survey.anonymous = spec.pulse.anonymous
            survey.min_group_size = spec.pulse.min_group_size or self.config.pulse_min_group_size
            survey.group_by = spec.pulse.group_by
            await s.flush()
        return u

    async def schedule(
        self, key: str, when: str | None, tz: str | None = None, now: datetime | None = None
    ) -> Update:
        """Schedule a loaded update: ``when`` is local wall-clock time, None means now."""
        now = now or self.runtime.clock.now()
        async with self.db.session() as s:
            u = (await s.execute(select(Update).where(Update.key == key))).scalar_one_or_none()
            if u is None:
                raise LookupError(f"no update {key!r} (see: concierge internal list)")
            if u.status not in ("draft", "scheduled"):
                raise ValueError(f"update {key!r} is {u.status}: it cannot be scheduled again")
            if when is None:
                u.scheduled_for, u.schedule_tz, u.not_before = None, None, now
            else:
                u.scheduled_for, u.schedule_tz = when, tz
                u.not_before = earliest_utc(when, tz)
            u.status = "scheduled"
            u.updated_at = now
            return u

    async def cancel(self, key: str, now: datetime | None = None) -> int:
        """Cancel an update: what was not sent yet is not sent."""
        now = now or self.runtime.clock.now()
        async with self.db.session() as s:
            u = (await s.execute(select(Update).where(Update.key == key))).scalar_one_or_none()
            if u is None:
                raise LookupError(f"no update {key!r}")
            u.status, u.updated_at = "cancelled", now
            rows = (
                await s.execute(
                    select(UpdateDelivery).where(
                        UpdateDelivery.update_id == u.id,
                        UpdateDelivery.status.in_((PLANNED, HELD)),
                    )
                )
            ).scalars()
            n = 0
            for d in rows:
                d.status, d.reason = SKIPPED, "update cancelled"
                n += 1
            return n

    # --- audiences ----------------------------------------------------------------------------
    async def preview(self, spec: str, now: datetime | None = None) -> Resolved:
        """Who an audience reaches now."""
        now = now or self.runtime.clock.now()
        external, notes = await fetch_external(channel_selectors(spec), self.directory)
        async with self.db.session() as s:
            res = await resolve(
                s,
                spec,
                now=now,
                new_hire_days=self.config.new_hire_days,
                content_dir=self.content_dir,
                external=external,
            )
        res.notes[:0] = notes
        return res

    # --- the scheduler round ------------------------------------------------------------------
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

    async def sync_files_if_changed(self) -> bool:
        """Reload the update files when one was added, changed or removed."""
        files = update_files(self.content_dir)
        signature = tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())
        if signature == self._files_seen:
            return False
        await self.sync_files()
        self._files_seen = signature
        return True

    async def round(self, now: datetime) -> RoundStats:
        """The ``internal updates`` job: changed files first, then a scheduler round."""
        await self.sync_files_if_changed()
        return await self.run_once(now)

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
            emp_ids = list(
                (
                    await s.execute(
                        select(UpdateDelivery.employee_id)
                        .where(
                            UpdateDelivery.status == PLANNED,
                            UpdateDelivery.due_at <= now,
                            UpdateDelivery.employee_id.is_not(None),
                        )
                        .distinct()
                    )
                ).scalars()
            )
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
        ids = [e for e in emp_ids if e is not None]
        for i in range(0, len(ids), BATCH):
            await self._process_employees(ids[i : i + BATCH], now, stats)
        for did in posts:
            await self._process_channel_post(did, now, stats)

    async def _lock_employees(self, s: AsyncSession, ids: list[int]) -> list[Employee]:
        q = select(Employee).where(Employee.id.in_(ids)).order_by(Employee.id)
        if self.db.is_postgres:
            q = q.with_for_update(skip_locked=True)  # another process has these people now
        return list((await s.execute(q)).scalars())

    async def _process_employees(self, ids: list[int], now: datetime, stats: RoundStats) -> None:
        """Decide the due deliveries of a batch of employees, in one transaction."""
        async with self.db.session() as s:
            emps = await self._lock_employees(s, ids)
            if not emps:
                return
            by_id = {e.id: e for e in emps}
            due: dict[int, list[tuple[UpdateDelivery, Update]]] = {}
            for d, u in (
                await s.execute(
                    select(UpdateDelivery, Update)
                    .join(Update, Update.id == UpdateDelivery.update_id)
                    .where(
                        UpdateDelivery.employee_id.in_(list(by_id)),
                        UpdateDelivery.status == PLANNED,
                        UpdateDelivery.due_at <= now,
                    )
                )
            ).all():
                due.setdefault(int(d.employee_id or 0), []).append((d, u))
            sent, important = await self._sent_this_week(s, list(by_id), now - WEEK)
            cache = _Cache()
            await self._prefetch(s, [by_id[i] for i in due], cache)
            for eid, rows in due.items():
                await self._decide(
                    s, by_id[eid], rows, sent.get(eid, 0), important.get(eid, 0), now, stats, cache
                )

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
                _PRIORITY.get(r[1].priority, 1),
                r[0].due_at,
                r[0].id,
            ),
        )
        cap = self.config.weekly_cap
        if emp.weekly_cap is not None:
            cap = min(cap, emp.weekly_cap)
        local = now.astimezone(self.tz_of(emp))
        closed = self.calendar.closed_reason(local)
        for d, u in ordered:
            if u.status == "cancelled":
                d.status, d.reason = SKIPPED, "update cancelled"
                stats.skipped[d.reason] += 1
            elif not emp.active:
                d.status, d.reason = SKIPPED, "employee is no longer active"
                stats.skipped[d.reason] += 1
            elif not emp.slack_user_id:
                d.status, d.reason = SKIPPED, "no Slack account"
                stats.skipped[d.reason] += 1
            elif u.topic and u.topic in (emp.opted_down or []) and not u.important:
                d.status, d.reason = SKIPPED, f"muted topic {u.topic}"
                stats.skipped[d.reason] += 1
            elif closed is not None:
                d.due_at = self.calendar.next_open(local).astimezone(UTC)
                d.deferred_count += 1
                d.reason = f"deferred: {closed}"
                stats.deferred += 1
            elif u.kind == "team_digest":
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

    async def _prefetch(self, s: AsyncSession, emps: list[Employee], cache: _Cache) -> None:
        """Contacts, identities and open conversations of a batch, in two queries."""
        slack_ids = [e.slack_user_id for e in emps if e.slack_user_id]
        if not slack_ids:
            return
        for identity, contact in (
            await s.execute(
                select(Identity, Contact)
                .join(Contact, Contact.id == Identity.contact_id)
                .where(Identity.channel == self.channel, Identity.external_id.in_(slack_ids))
            )
        ).all():
            cache.people[identity.external_id] = (contact, identity)
        contact_ids = [c.id for c, _ in cache.people.values()]
        if contact_ids:
            for conv in (
                await s.execute(
                    select(Conversation)
                    .where(
                        Conversation.contact_id.in_(contact_ids), Conversation.status != "closed"
                    )
                    .order_by(Conversation.id)
                )
            ).scalars():
                cache.conversations[conv.contact_id] = conv  # the newest wins

    def _hold(self, d: UpdateDelivery, emp: Employee, now: datetime, reason: str) -> None:
        d.status, d.reason = HELD, reason
        d.due_at = self.next_digest(now.astimezone(self.tz_of(emp))).astimezone(UTC)

    def next_digest(self, local: datetime) -> datetime:
        """The next digest moment at or after ``local`` (in its zone)."""
        return _next_weekday_time(local, self.config.digest_day, self.config.digest_time)

    async def item(self, s: AsyncSession, u: Update, language: str | None) -> Item:
        lang = language or (u.content or {}).get("language") or self.texts.default_language
        it = Item.of(u.id, u.key, u.kind, u.content or {}, lang)
        if u.kind == "pulse":
            survey = (
                await s.execute(select(PulseSurvey).where(PulseSurvey.update_id == u.id))
            ).scalar_one_or_none()
            if survey is not None:
                it.pulse = {
                    "survey_id": survey.id,
                    "question": survey.question,
                    "options": survey.options,
                    "anonymous": survey.anonymous,
                    "min": survey.min_group_size,
                }
        return it

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

    async def send_to(
        self,
        s: AsyncSession,
        emp: Employee,
        message: Outbound,
        *,
        key: str,
        now: datetime,
        language: str | None = None,
        cache: _Cache | None = None,
    ) -> int | None:
        """Queue a direct message to an employee (transcript + outbox, in ``s``)."""
        assert emp.slack_user_id
        cache = cache or _Cache()
        contact, identity = await self._contact(s, emp, now, cache)
        conv = cache.conversations.get(contact.id)
        if conv is None:
            conv = await self.runtime.engine.open_conversation(s, contact, now)
            cache.conversations[contact.id] = conv
        reply = Reply(
            contact_id=contact.id,
            conversation_id=conv.id,
            channel=self.channel,
            address=identity.address or emp.slack_user_id,
            message=message,
            idempotency_key=key,
            language=language or emp.language,
        )
        [ids] = await self.runtime.engine.write(s, [reply], now=now)
        return ids[0] if ids else None

    async def _contact(
        self, s: AsyncSession, emp: Employee, now: datetime, cache: _Cache
    ) -> tuple[Contact, Identity]:
        """The employee as a contact on Slack (created on the first message to them)."""
        found = cache.people.get(str(emp.slack_user_id))
        if found is None:
            row = (
                await s.execute(
                    select(Identity, Contact)
                    .join(Contact, Contact.id == Identity.contact_id)
                    .where(
                        Identity.channel == self.channel, Identity.external_id == emp.slack_user_id
                    )
                )
            ).first()
            if row is not None:
                found = (row[1], row[0])
        if found is None:
            contact, identity = await resolve_identity(
                s,
                channel=self.channel,
                external_id=str(emp.slack_user_id),
                now=now,
                display_name=emp.name or None,
                language=emp.language,
            )
            contact.timezone = contact.timezone or emp.timezone
            contact.email = contact.email or emp.email
            found = (contact, identity)
        cache.people[str(emp.slack_user_id)] = found
        contact = found[0]
        if emp.contact_id != contact.id:
            emp.contact_id = contact.id
        if not (contact.attributes or {}).get("employee"):
            # other features can tell staff from customers (no customer prompts to colleagues)
            contact.attributes = {**(contact.attributes or {}), "employee": True}
        return found

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
            local = now.astimezone(self.calendar.tz)
            closed = self.calendar.closed_reason(local)
            if u.status == "cancelled":
                d.status, d.reason = SKIPPED, "update cancelled"
                stats.skipped[d.reason] += 1
                return
            if closed is not None:
                d.due_at = self.calendar.next_open(local).astimezone(UTC)
                d.deferred_count += 1
                d.reason = f"deferred: {closed}"
                stats.deferred += 1
                return
            message = self.renderer.update(await self.item(s, u, d.language))
            post = Reply(
                channel=self.channel,
                address=str(d.address),
                message=message,
                idempotency_key=f"internal:update:{u.id}:channel",
            )
            [ids] = await write(s, [post], now=now)
            d.outbox_id = ids[0] if ids else None
            d.status, d.sent_at = SENT, now
            stats.channel_posts += 1

    async def process_digests(self, now: datetime, stats: RoundStats) -> None:
        async with self.db.session() as s:
            emp_ids = list(
                (
                    await s.execute(
                        select(UpdateDelivery.employee_id)
                        .where(UpdateDelivery.status == HELD, UpdateDelivery.due_at <= now)
                        .distinct()
                    )
                ).scalars()
            )
        ids = [e for e in emp_ids if e is not None]
        for i in range(0, len(ids), BATCH):
            await self._digests_for(ids[i : i + BATCH], now, stats)

    async def _digests_for(self, ids: list[int], now: datetime, stats: RoundStats) -> None:
        """One digest message per employee of a batch, bundling their held deliveries."""
        async with self.db.session() as s:
            emps = await self._lock_employees(s, ids)
            if not emps:
                return
            by_id = {e.id: e for e in emps}
            held: dict[int, list[tuple[UpdateDelivery, Update]]] = {}
            for d, u in (
                await s.execute(
                    select(UpdateDelivery, Update)
                    .join(Update, Update.id == UpdateDelivery.update_id)
                    .where(
                        UpdateDelivery.employee_id.in_(list(by_id)),
                        UpdateDelivery.status == HELD,
                        UpdateDelivery.due_at <= now,
                    )
                    .order_by(UpdateDelivery.id)
                )
            ).all():
                held.setdefault(int(d.employee_id or 0), []).append((d, u))
            cache = _Cache()
            await self._prefetch(s, [by_id[i] for i in held], cache)
            items: dict[tuple[int, str | None], Item] = {}
            for eid, rows in held.items():
                emp = by_id[eid]
                keep = [(d, u) for d, u in rows if u.status != "cancelled" and emp.active]
                for d, u in rows:
                    if (d, u) not in keep:
                        d.status, d.reason = SKIPPED, "update cancelled or employee inactive"
                if not keep or not emp.slack_user_id:
                    continue
                local = now.astimezone(self.tz_of(emp))
                closed = self.calendar.closed_reason(local)
                if closed is not None:
                    later = self.calendar.next_open(local).astimezone(UTC)
                    for d, _ in keep:
                        d.due_at = later
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
                s, since=start.astimezone(UTC), until=end.astimezone(UTC), runtime=self.runtime
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

    # --- engagement ---------------------------------------------------------------------------
    async def employee_by_slack(self, s: AsyncSession, slack_user_id: str) -> Employee | None:
        return (
            await s.execute(select(Employee).where(Employee.slack_user_id == slack_user_id))
        ).scalar_one_or_none()

    async def employee_by_contact(self, s: AsyncSession, contact_id: int) -> Employee | None:
        return (
            await s.execute(select(Employee).where(Employee.contact_id == contact_id))
        ).scalar_one_or_none()

    async def record(
        self,
        s: AsyncSession,
        *,
        update_id: int,
        employee_id: int | None,
        kind: str,
        value: str | None,
        event_key: str,
        now: datetime,
    ) -> bool:
        """Store one engagement event; False when ``event_key`` was seen before (a retry)."""
        ins = insert_for(self.db.is_postgres)
        res = await s.execute(
            ins(EngagementEvent)
            .values(
                update_id=update_id,
                employee_id=employee_id,
                kind=kind,
                value=value,
                event_key=event_key[:255],
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["event_key"])
            .returning(EngagementEvent.id)
        )
        return res.scalar_one_or_none() is not None

    async def update_for_message(
        self, s: AsyncSession, channel: str | None, ts: str
    ) -> tuple[int, int | None] | None:
        """(update id, employee id) of the Slack message ``ts`` we sent (update or digest)."""
        from bot.storage.models import OutboxMessage

        ids = {ts}
        if channel:
            ids |= {f"{channel}:{ts}", f"{channel}/{ts}"}
        ob = (
            (
                await s.execute(
                    select(OutboxMessage.id).where(
                        OutboxMessage.channel == self.channel,
                        OutboxMessage.platform_message_id.in_(ids),
                    )
                )
            )
            .scalars()
            .all()
        )
        if not ob:
            return None
        row = (
            await s.execute(
                select(UpdateDelivery.update_id, UpdateDelivery.employee_id)
                .where(
                    (UpdateDelivery.outbox_id.in_(ob)) | (UpdateDelivery.digest_outbox_id.in_(ob))
                )
                .order_by(UpdateDelivery.id)
                .limit(1)
            )
        ).first()
        return (int(row[0]), row[1]) if row else None

    async def reaction(
        self,
        *,
        event_key: str,
        slack_user: str,
        channel: str | None,
        ts: str,
        reaction: str,
        removed: bool = False,
        now: datetime | None = None,
    ) -> bool:
        """A reaction on one of our messages; True when counted (False: a retry or not ours)."""
        now = now or self.runtime.clock.now()
        async with self.db.session() as s:
            found = await self.update_for_message(s, channel, ts)
            if found is None:
                return False
            emp = await self.employee_by_slack(s, slack_user)
            return await self.record(
                s,
                update_id=found[0],
                employee_id=emp.id if emp else None,
                kind="reaction_removed" if removed else "reaction",
                value=reaction[:64],
                event_key=event_key,
                now=now,
            )

    async def feedback(
        self,
        s: AsyncSession,
        emp: Employee,
        update_id: int,
        value: str,
        *,
        event_key: str,
        now: datetime,
    ) -> str | None:
        """A "Got it" / "Tell me more" / 1-5 / link click: the reply text ("" for none), or None
        for a retry or a click that is not ours."""
        u = await s.get(Update, update_id)
        if u is None or not await self.reached(s, u, emp):
            return None
        if value.startswith("rating:"):
            kind, val = "rating", value.split(":", 1)[1]
            if val not in {"1", "2", "3", "4", "5"}:
                return None
        elif value in ("got_it", "more"):
            kind, val = "click", value
        elif value.startswith("link:"):
            kind, val = "click", value[:64]
        else:
            return None
        if not await self.record(
            s,
            update_id=u.id,
            employee_id=emp.id,
            kind=kind,
            value=val,
            event_key=event_key,
            now=now,
        ):
            return None
        lang = emp.language
        if kind == "rating":
            return self.texts("ack_rating", lang, value=val)
        if val == "got_it":
            return self.texts("ack_got_it", lang)
        if val.startswith("link:"):
            return ""  # the link opened: counted, nothing to say
        more = (u.content or {}).get("more") or {}
        base = (u.content or {}).get("language") or "en"
        text = more.get(lang or base) or more.get(base)
        return str(text) if text else self.texts("more_none", lang)

    async def reached(self, s: AsyncSession, u: Update, emp: Employee) -> bool:
        """Whether the update reached this person (a channel post: anyone may press)."""
        if u.delivery == "channel":
            return True
        found = await s.execute(
            select(UpdateDelivery.id).where(
                UpdateDelivery.update_id == u.id,
                UpdateDelivery.employee_id == emp.id,
                UpdateDelivery.status.in_((SENT, BUNDLED)),
            )
        )
        return found.first() is not None

    async def pulse_answer(
        self,
        s: AsyncSession,
        emp: Employee,
        survey_id: int,
        value: str,
        *,
        event_key: str,
        now: datetime,
    ) -> str | None:
        """Store (or change) an answer; anonymous surveys keep only a keyed hash of the person."""
        survey = await s.get(PulseSurvey, survey_id)
        if survey is None or value not in survey.options:
            return None
        u = await s.get(Update, survey.update_id)
        if u is None or not await self.reached(s, u, emp):
            return None  # only the people asked may answer
        if survey.anonymous:
            respondent = hmac.new(
                self.secret(), f"pulse:{survey.id}:{emp.id}".encode(), hashlib.sha256
            ).hexdigest()[:40]
            when = datetime.combine(now.date(), time(0), tzinfo=UTC)  # day only
            employee_id = None
        else:
            respondent, when, employee_id = f"e{emp.id}", now, emp.id
        group = str(getattr(emp, survey.group_by, None) or "") or None
        existing = (
            await s.execute(
                select(PulseAnswer).where(
                    PulseAnswer.survey_id == survey.id, PulseAnswer.respondent == respondent
                )
            )
        ).scalar_one_or_none()
        if existing is None:
            s.add(
                PulseAnswer(
                    survey_id=survey.id,
                    respondent=respondent,
                    employee_id=employee_id,
                    group=group,
                    value=value,
                    created_at=when,
                )
            )
        else:
            existing.value, existing.group = value, group
        # the engagement row keeps no person for anonymous surveys
        await self.record(
            s,
            update_id=survey.update_id,
            employee_id=employee_id,
            kind="pulse_answer",
            value=None if survey.anonymous else value,
            event_key=event_key,
            now=when,
        )
        return self.texts(
            "pulse_thanks_anonymous" if survey.anonymous else "pulse_thanks", emp.language
        )

    # --- what an employee asks for -------------------------------------------------------------
    async def recent_for(
        self, s: AsyncSession, emp: Employee, now: datetime, days: int = 14
    ) -> list[tuple[UpdateDelivery, Update]]:
        rows = (
            await s.execute(
                select(UpdateDelivery, Update)
                .join(Update, Update.id == UpdateDelivery.update_id)
                .where(
                    UpdateDelivery.employee_id == emp.id,
                    UpdateDelivery.status.in_((SENT, BUNDLED)),
                    UpdateDelivery.sent_at > now - timedelta(days=days),
                    Update.kind != "team_digest",
                )
                .order_by(UpdateDelivery.sent_at.desc(), UpdateDelivery.id.desc())
            )
        ).all()
        return [(d, u) for d, u in rows]

    async def missed_for(
        self, s: AsyncSession, emp: Employee, now: datetime, days: int = 30
    ) -> list[tuple[UpdateDelivery, Update]]:
        """Held updates not bundled yet, and sent ones the person never reacted to or clicked."""
        engaged = set(
            (
                await s.execute(
                    select(EngagementEvent.update_id).where(EngagementEvent.employee_id == emp.id)
                )
            ).scalars()
        )
        rows = (
            await s.execute(
                select(UpdateDelivery, Update)
                .join(Update, Update.id == UpdateDelivery.update_id)
                .where(
                    UpdateDelivery.employee_id == emp.id,
                    Update.kind != "team_digest",
                    Update.status != "cancelled",
                    and_(
                        UpdateDelivery.status.in_((HELD, SENT, BUNDLED)),
                        UpdateDelivery.created_at > now - timedelta(days=days),
                    ),
                )
                .order_by(UpdateDelivery.id.desc())
            )
        ).all()
        return [(d, u) for d, u in rows if u.id not in engaged]

    def topic_of(self, text: str, known: Sequence[str] = ()) -> str | None:
        """The topic a person names ("launch notes" -> launch)."""
        from bot.matcher import fold

        said = fold(text)
        best: tuple[int, str] | None = None
        for topic, aliases in self.config.topics.items():
            for alias in [topic, *aliases]:
                a = fold(alias)
                if a and a in said and (best is None or len(a) > best[0]):
                    best = (len(a), topic)
        for topic in known:
            if fold(topic) in said and (best is None or len(topic) > best[0]):
                best = (len(topic), topic)
        return best[1] if best else None


def _next_weekday_time(local: datetime, day: str, at: time) -> datetime:
    target = WEEKDAYS.index(day)
    d: date = local.date() + timedelta(days=(target - local.weekday()) % 7)
    cand = datetime.combine(d, at, tzinfo=local.tzinfo)
    if cand < local:
        cand += WEEK
    return cand
