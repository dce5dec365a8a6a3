"""Update files into the database: ``updates/*.md`` and ``flows/internal/*.yml``, scheduling and
cancelling an update, previewing an audience.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.internal.audiences import (
    Resolved,
    channel_selectors,
    fetch_external,
    resolve,
)
from bot.internal.base import HELD, PLANNED, SKIPPED, ServiceBase
from bot.internal.content import (
    ContentError,
    UpdateSpec,
    earliest_utc,
    load_folder,
    update_files,
)
from bot.internal.models import (
    PulseSurvey,
    Update,
    UpdateDelivery,
)

log = logging.getLogger(__name__)


class Files(ServiceBase):
    """Update files in: load, schedule, cancel, preview an audience."""

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

    async def sync_files_if_changed(self) -> bool:
        """Reload the update files when one was added, changed or removed."""
        files = update_files(self.content_dir)
        signature = tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())
        if signature == self._files_seen:
            return False
        await self.sync_files()
        self._files_seen = signature
        return True
