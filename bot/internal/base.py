"""The internal-updates service's shared layer: configuration, the company calendar, employees
as contacts, rendering an update and queuing a message to an employee.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.contacts import find_identity, resolve_identity
from bot.engine import Reply
from bot.internal.audiences import (
    Directory,
)
from bot.internal.company_calendar import CompanyCalendar
from bot.internal.config import InternalSettings
from bot.internal.models import (
    Employee,
    PulseSurvey,
    Update,
    UpdateDelivery,
)
from bot.internal.render import Item, PlainRenderer, Renderer, Texts
from bot.storage.db import Database
from bot.storage.models import Contact, Conversation, Identity
from bot.types import Capabilities, Outbound

if TYPE_CHECKING:
    from bot.runtime import Runtime


log = logging.getLogger(__name__)

PLANNED, SENT, HELD, BUNDLED, SKIPPED = "planned", "sent", "held", "bundled", "skipped"
BATCH = 200  # employees decided in one transaction
PRIORITY = {"high": 0, "normal": 1, "low": 2}
WEEK = timedelta(days=7)


@dataclass
class _Cache:
    """What one batch looks up once: people, open conversations, rendered messages."""

    people: dict[str, tuple[Contact, Identity]] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    messages: dict[tuple[int, str | None], Outbound] = field(default_factory=dict)


class ServiceBase:
    """What every layer of the service shares: settings, the calendar, employees as contacts,
    and queuing one message to an employee."""

    def __init__(self, runtime: Runtime, config: InternalSettings) -> None:
        self.runtime = runtime
        self.config = config
        self.texts = Texts(runtime.responses, runtime.settings.default_language)
        self.renderer: Renderer = PlainRenderer(self.texts)
        self.directory: Directory | None = None
        # False while a people sync the platform promised has not run yet: updates wait for it
        self.people_ready = True
        # the channel employees are written on: set by the adapter that registers itself
        # (``channels.slack_internal.attach``); None: nobody can be reached
        self.channel: str | None = None
        self.channel_capabilities: Capabilities | None = None
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

    # --- employees as contacts ----------------------------------------------------------------
    async def _lock_employees(self, s: AsyncSession, ids: list[int]) -> list[Employee]:
        q = select(Employee).where(Employee.id.in_(ids)).order_by(Employee.id)
        if self.db.is_postgres:
            q = q.with_for_update(skip_locked=True)  # another process has these people now
        return list((await s.execute(q)).scalars())

    async def _due_employees(self, s: AsyncSession, status: str, now: datetime) -> list[int]:
        """The employees with deliveries of ``status`` due by ``now``."""
        rows = await s.execute(
            select(UpdateDelivery.employee_id)
            .where(
                UpdateDelivery.status == status,
                UpdateDelivery.due_at <= now,
                UpdateDelivery.employee_id.is_not(None),
            )
            .distinct()
        )
        return [e for e in rows.scalars() if e is not None]

    async def _due_batch(
        self, s: AsyncSession, ids: list[int], status: str, now: datetime
    ) -> tuple[dict[int, Employee], dict[int, list[tuple[UpdateDelivery, Update]]], _Cache]:
        """A batch of employees (those no other process holds), by id; their deliveries of
        ``status`` due by ``now``, by employee in order; a cache with their contacts."""
        by_id = {e.id: e for e in await self._lock_employees(s, ids)}
        due: dict[int, list[tuple[UpdateDelivery, Update]]] = {}
        cache = _Cache()
        if by_id:
            for d, u in (
                await s.execute(
                    select(UpdateDelivery, Update)
                    .join(Update, Update.id == UpdateDelivery.update_id)
                    .where(
                        UpdateDelivery.employee_id.in_(list(by_id)),
                        UpdateDelivery.status == status,
                        UpdateDelivery.due_at <= now,
                    )
                    .order_by(UpdateDelivery.id)
                )
            ).all():
                due.setdefault(int(d.employee_id or 0), []).append((d, u))
            await self._prefetch(s, [by_id[i] for i in due], cache)
        return by_id, due, cache

    async def _prefetch(self, s: AsyncSession, emps: list[Employee], cache: _Cache) -> None:
        """Contacts, identities and open conversations of a batch, in two queries."""
        slack_ids = [e.slack_user_id for e in emps if e.slack_user_id]
        if not slack_ids or self.channel is None:
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
        assert emp.slack_user_id and self.channel is not None
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
        channel = self.channel
        assert channel is not None
        found = cache.people.get(str(emp.slack_user_id))
        if found is None:
            found = await find_identity(s, channel, str(emp.slack_user_id))
        if found is None:
            contact, identity = await resolve_identity(
                s,
                channel=channel,
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
