"""Engagement: reactions, button clicks, ratings and pulse answers on our messages (each event
once), and what an employee asks for (recent and missed updates, topics).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.internal.base import BUNDLED, HELD, SENT, ServiceBase
from bot.internal.models import (
    Employee,
    EngagementEvent,
    PulseAnswer,
    PulseSurvey,
    Update,
    UpdateDelivery,
)
from bot.storage.dialect import insert_for

log = logging.getLogger(__name__)


class Engagement(ServiceBase):
    """Reactions, clicks, ratings and pulse answers; what an employee asks for."""

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
                _deliveries_to(emp)
                .where(
                    UpdateDelivery.status.in_((SENT, BUNDLED)),
                    UpdateDelivery.sent_at > now - timedelta(days=days),
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
                _deliveries_to(emp)
                .where(
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


def _deliveries_to(emp: Employee) -> Select[UpdateDelivery, Update]:
    """An employee's deliveries with their updates, the support & sales digest left out."""
    return (
        select(UpdateDelivery, Update)
        .join(Update, Update.id == UpdateDelivery.update_id)
        .where(UpdateDelivery.employee_id == emp.id, Update.kind != "team_digest")
    )
