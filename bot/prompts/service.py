"""The prompts feature in one object: definitions, signal receivers, sweeps, scheduler loop."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import outbox
from bot.outreach.stats import RoundStats
from bot.prompts import triggers
from bot.prompts.config import PromptSettings
from bot.prompts.definitions import (
    Prompt,
    PromptBook,
    check_responses,
    check_stages,
    load_prompts,
)
from bot.prompts.guards import Rules
from bot.prompts.models import (
    PENDING,
    SKIPPED,
    PromptAction,
    PromptConversion,
    PromptSend,
    PromptSkip,
    PromptSuppression,
)
from bot.prompts.scheduler import Scheduler, render_message, skip_row, stable_rng
from bot.storage.models import Contact, OutboxMessage
from bot.types import Button, Outbound

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

NPS_SCALE = range(11)
_NO_NAME = re.compile(r"\s+([,!])")


def nps_category(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


class PromptService:
    def __init__(self, runtime: Runtime, config: PromptSettings) -> None:
        self.runtime = runtime
        self.config = config
        self.rules = Rules(config, runtime.settings.default_timezone)
        self.scheduler = Scheduler(self)
        self._book: PromptBook | None = None

    # --- definitions ----------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.config.file or (self.runtime.settings.flows_dir / "prompts.yml")

    @property
    def book(self) -> PromptBook:
        if self._book is None:
            self._book = load_prompts(self.path, self._lifecycle_segments())
            problems = check_responses(
                self._book, self.runtime.responses, self.runtime.settings.languages
            ) + check_stages(self._book, self.path.parent / "lifecycle.yml")
            for problem in problems:
                log.warning("%s", problem)
        return self._book

    def _lifecycle_segments(self) -> dict[str, Any]:
        """The segments of ``flows/lifecycle.yml`` (the lifecycle feature's), if it runs."""
        from bot.lifecycle.service import LifecycleService

        lifecycle = self.runtime.maybe_service(LifecycleService)
        return dict(lifecycle.config.segments or {}) if lifecycle is not None else {}

    def reload(self) -> PromptBook:
        self._book = None
        return self.book

    def configure(self, **overrides: Any) -> None:
        """Replace settings (tests, embedding): keyword arguments of PromptSettings."""
        self.config = PromptSettings.model_validate(
            {**self.runtime.settings.prompts.model_dump(), **overrides}
        )
        self.rules = Rules(self.config, self.runtime.settings.default_timezone)
        self._book = None

    @property
    def now(self) -> datetime:
        return self.runtime.clock.now()

    @property
    def default_tz(self) -> str:
        return self.runtime.settings.default_timezone

    # --- texts ----------------------------------------------------------------------------
    def language_of(self, contact: Contact) -> str:
        langs = self.runtime.settings.languages
        lang = contact.language
        if lang in langs:
            return str(lang)
        if lang and lang[:2] in langs:
            return lang[:2]
        return self.runtime.settings.default_language

    def render(
        self,
        prompt: Prompt,
        variant: str,
        contact: Contact,
        language: str,
        context: dict[str, Any],
        instance_key: str,
    ) -> Outbound:
        r = self.runtime.responses
        response = next((v.response for v in prompt.variants if v.id == variant), None)
        response = response or prompt.variants[0].response
        values = {
            k: v for k, v in (contact.attributes or {}).items() if isinstance(v, str | int | float)
        }
        values.update(context)
        values.update(
            first_name=(contact.display_name or "").split(" ")[0],
            shop=self.config.shop_name,
            review_url=self.config.review_url,
            referral_url=self.config.referral_url,
        )
        for reserved in ("name", "language", "rng", "slots"):  # render()'s own arguments
            values.pop(reserved, None)
        out = r.render(
            response,
            language,
            rng=stable_rng(contact.id, prompt.id, instance_key),
            slots={"stage": contact.lifecycle_stage},
            **values,
        )
        text, buttons = (out.text, out.buttons) if out is not None else (response, ())
        if not values["first_name"]:  # "Hi ," when we do not know the name: "Hi,"
            text = _NO_NAME.sub(r"\1", text)
        extra: tuple[Button, ...] = ()
        if prompt.kind == "nps":
            extra = tuple(
                Button(str(n), f'/nps{{"score": {n}, "prompt": "{prompt.id}"}}') for n in NPS_SCALE
            )
        elif prompt.kind == "review" and not buttons:
            extra = (
                Button(
                    r.text("utter_prompt_review_button", language),
                    "/review_link",
                    url=self.config.review_url,
                ),
            )
        opt_out = (
            r.text("utter_prompt_opt_out_line", language)
            if r.has("utter_prompt_opt_out_line", language)
            else None
        )
        return render_message(
            text,
            buttons,
            prompt,
            opt_out_line=opt_out,
            extra_buttons=extra,
            metadata={"prompt": prompt.id, "variant": variant},
        )

    # --- signal receivers (inside the sender's transaction) -------------------------------
    async def on_event(
        self, *, session: AsyncSession, contact: Contact, event: Any, **_: Any
    ) -> None:
        book = self.book
        etype, occurred, _props, _ident = triggers.event_fields(event)
        if etype not in book.event_types:
            return
        now = self.now
        when = occurred or now
        await triggers.cancel_on_exit(session, book, contact.id, etype, now)
        if etype in book.complaint_open:
            session.add(
                PromptSuppression(
                    contact_id=contact.id, kind="complaint", opened_at=when, cause=etype
                )
            )
        if etype in book.complaint_close:
            await session.execute(
                update(PromptSuppression)
                .where(
                    PromptSuppression.contact_id == contact.id,
                    PromptSuppression.closed_at.is_(None),
                )
                .values(closed_at=when)
                .execution_options(synchronize_session=False)
            )
        new = triggers.for_event(book, contact, event, now, self.default_tz)
        if new and await triggers.schedule(session, new, now):
            self.wake()
        await self._convert(session, contact.id, etype, when)

    async def on_stage(
        self,
        *,
        session: AsyncSession,
        contact: Contact,
        old: str | None,
        new: str,
        now: datetime | None = None,
        **_: Any,
    ) -> None:
        await self.on_stage_many(
            session=session, items=[{"contact": contact, "old": old}], new=new, now=now
        )

    async def on_stage_many(
        self,
        *,
        session: AsyncSession,
        items: Sequence[Mapping[str, Any]],
        new: str,
        now: datetime | None = None,
        **_: Any,
    ) -> None:
        """Contacts that moved to ``new`` (one, or a batch from the inactivity sweep): a few
        set-based statements for the whole batch."""
        book = self.book
        now = now or self.now
        by_old: dict[str, list[int]] = {}
        actions: list[triggers.NewAction] = []
        for item in items:
            contact = item["contact"]
            old = item.get("old")
            if old is not None:
                by_old.setdefault(str(old), []).append(int(contact.id))
            actions += triggers.for_stage(book, contact, new, now, self.default_tz)
        for old, ids in by_old.items():
            await triggers.cancel_on_stage_left(session, book, ids, old, now)
        if actions and await triggers.schedule(session, actions, now):
            self.wake()

    async def on_opted_out(
        self, *, session: AsyncSession, contact: Contact, now: datetime | None = None, **_: Any
    ) -> None:
        """Stop means stop, at once: pending marketing prompts are skipped, queued marketing
        messages that have not left yet are cancelled (on every channel)."""
        now = now or self.now
        marketing = [p.id for p in self.book.prompts.values() if p.marketing]
        if marketing:
            pending = (
                await session.execute(
                    select(PromptAction).where(
                        PromptAction.contact_id == contact.id,
                        PromptAction.prompt_id.in_(marketing),
                        PromptAction.status == PENDING,
                    )
                )
            ).scalars()
            for a in pending:
                a.status, a.reason, a.updated_at = SKIPPED, "opted_out", now
                session.add(PromptSkip(**skip_row(a, "opted_out", None, None, now)))
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.contact_id == contact.id,
                OutboxMessage.purpose == "marketing",
                OutboxMessage.status == outbox.PENDING,
            )
            .values(status=outbox.CANCELLED, last_error="opted out of marketing")
            .execution_options(synchronize_session=False)
        )

    async def _convert(
        self, session: AsyncSession, contact_id: int, etype: str, when: datetime
    ) -> None:
        """A goal event: every exposure (send or holdout) of a prompt with this goal within
        its window converts, once."""
        goals = {
            p.id: p.goal for p in self.book.prompts.values() if p.goal and p.goal.event == etype
        }
        if not goals:
            return
        longest = max(g.within for g in goals.values())
        exposures: list[tuple[str, str, str, datetime]] = []
        for pid, key, variant, at in await session.execute(
            select(
                PromptSend.prompt_id,
                PromptSend.instance_key,
                PromptSend.variant,
                PromptSend.sent_at,
            ).where(
                PromptSend.contact_id == contact_id,
                PromptSend.prompt_id.in_(list(goals)),
                PromptSend.sent_at >= when - longest,
                PromptSend.sent_at <= when,
            )
        ):
            exposures.append((pid, key, variant or "a", at))
        for pid, key, at in await session.execute(
            select(PromptSkip.prompt_id, PromptSkip.instance_key, PromptSkip.at).where(
                PromptSkip.contact_id == contact_id,
                PromptSkip.prompt_id.in_(list(goals)),
                PromptSkip.reason == "holdout",
                PromptSkip.at >= when - longest,
                PromptSkip.at <= when,
            )
        ):
            exposures.append((pid, key, "holdout", at))
        if not exposures:
            return
        from bot.storage.dialect import insert_for as _insert

        stmt = _insert(session)(PromptConversion).on_conflict_do_nothing(
            index_elements=["prompt_id", "contact_id", "instance_key"]
        )
        for pid, key, variant, at in exposures:
            if when - at <= goals[pid].within:
                await session.execute(
                    stmt,
                    {
                        "prompt_id": pid,
                        "contact_id": contact_id,
                        "instance_key": key,
                        "variant": variant,
                        "goal": etype,
                        "exposed_at": at,
                        "converted_at": when,
                    },
                )

    # --- NPS ---------------------------------------------------------------------------
    async def nps_answered(
        self, session: AsyncSession, contact: Contact, answer_id: int, category: str, now: datetime
    ) -> None:
        actions = triggers.for_nps(self.book, contact, category, answer_id, now, self.default_tz)
        if actions and await triggers.schedule(session, actions, now):
            self.wake()

    # --- the jobs -------------------------------------------------------------------------
    def wake(self) -> None:
        """Something is due now: the ``prompts`` job runs at once."""
        self.runtime.jobs.wake("prompts")

    async def sweep(self, now: datetime | None = None) -> int:
        """Schedules, segments, stage entries and attribute dates (set-based per zone)."""
        now = now or self.now
        book = self.book
        horizon = timedelta(hours=self.config.horizon_hours)
        n = 0
        async with self.runtime.db.session() as s:
            n += await triggers.sweep_schedules(s, book, now, horizon, self.default_tz)
        async with self.runtime.db.session() as s:
            segments = self._lifecycle_segments()
            n += await triggers.sweep_segments(
                s, book, now, self.default_tz, resolve=segments.__getitem__
            )
        async with self.runtime.db.session() as s:
            n += await triggers.sweep_stages(s, book, now, horizon, self.default_tz)
        async with self.runtime.db.session() as s:
            n += await triggers.sweep_attributes(s, book, now, horizon, self.default_tz)
        return n

    async def process_due(
        self, now: datetime | None = None, max_batches: int = 1_000_000
    ) -> RoundStats:
        """Send (or skip, defer) every action due at ``now``, batch after batch."""
        now = now or self.now
        total = RoundStats()
        for _ in range(max_batches):
            stats = await self.scheduler.run_batch(now, self.config.batch_size)
            if not stats.batches:
                break
            total.add(stats)
        return total

    async def run_once(self, now: datetime | None = None, *, sweep: bool = True) -> RoundStats:
        """One round at ``now`` (tests drive it with a manual clock)."""
        now = now or self.now
        scheduled = await self.sweep(now) if sweep else 0
        stats = await self.process_due(now)
        stats.scheduled += scheduled
        return stats

    async def round(self, now: datetime) -> RoundStats:
        """The ``prompts`` job: send (or skip, defer) what is due, and log what happened."""
        stats = await self.process_due(now)
        if stats.processed:
            log.info(
                "prompts: %d sent, %d deferred, %d held out, skipped %s",
                stats.sent,
                stats.deferred,
                stats.held,
                dict(stats.skipped),
            )
        return stats
