"""Flows outside a turn: a shop event, a stage change, a wait that ran out (issue 6).

Messages go to the person's best channel through the outbox, as :func:`~bot.outreach.reach.
choose_reach` decides (a channel that can write first, consent for the flow's purpose, opt-out);
when nobody can be written to, the flow waits as ``pending`` and starts with their next message,
wherever it comes from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine import replies
from bot.flows.interpreter import Interpreter, Run
from bot.flows.model import END, Flow
from bot.lifecycle.models import (
    ACTIVE,
    CANCELLED,
    DONE,
    PAUSED,
    PENDING,
    WAITING,
    FlowState,
)
from bot.outreach.reach import Decision, Person, Reach, capabilities, choose_reach
from bot.storage.dialect import rowcount
from bot.storage.models import Consent, Contact, Conversation, Identity

log = logging.getLogger(__name__)


class FlowOutreach(Interpreter):
    # --- outside a turn ----------------------------------------------------------------------
    def language_of(self, contact: Contact) -> str:
        langs = self.runtime.settings.languages
        lang = contact.language or ""
        if lang in langs:
            return lang
        if lang[:2] in langs:
            return lang[:2]
        return str(self.runtime.settings.default_language)

    async def reach(
        self, s: AsyncSession, contact: Contact, purpose: str, now: datetime
    ) -> Decision:
        """Where a flow of ``purpose`` may write to the person (:func:`choose_reach`): their
        preferred channel, else the one they used last, among those that push, with consent."""
        options = [
            Reach(i.channel, i.address or i.external_id, i.last_seen_at or i.created_at)
            for i in (
                await s.execute(
                    select(Identity)
                    .where(
                        Identity.contact_id == contact.id,
                        Identity.reachable.is_(True),
                        Identity.started.is_(True),
                    )
                    .order_by(Identity.id.desc())
                )
            ).scalars()
        ]
        consents = {
            (channel, p): bool(granted)
            for channel, p, granted in await s.execute(
                select(Consent.channel, Consent.purpose, Consent.granted).where(
                    Consent.contact_id == contact.id
                )
            )
        }
        person = Person(consents, bool(contact.marketing_opt_out), contact.preferred_channel)
        return choose_reach(
            options,
            person,
            purpose=purpose,
            capabilities=capabilities(self.runtime.senders),
            now=now,
        )

    async def trigger_outside(
        self,
        s: AsyncSession,
        contact: Contact,
        flows: Sequence[tuple[Flow, str, dict[str, Any]]],
        now: datetime,
    ) -> int:
        """Start flows for a person who is not writing right now (events, stage changes): on
        a channel :func:`choose_reach` allows, else pending until they write (an opted-out
        person gets no marketing flow at all)."""
        if not flows:
            return 0
        states = await self.open_states(s, contact.id)
        busy = (
            await s.execute(
                select(Conversation.status)
                .where(Conversation.contact_id == contact.id, Conversation.status != "closed")
                .order_by(Conversation.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none() == "handoff"
        reach: dict[str, Decision] = {}
        started = 0
        for flow, trigger, context in flows:
            if any(st.flow_id == flow.id for st in states):
                continue  # this flow is already under way for them
            if flow.purpose not in reach:
                reach[flow.purpose] = await self.reach(s, contact, flow.purpose, now)
            d = reach[flow.purpose]
            if d.reason == "opted_out":
                continue
            if not d.send or busy:
                st = FlowState(
                    contact_id=contact.id, flow_id=flow.id, step_id=flow.first(), status=PENDING,
                    stack=[], history=[], slots={}, context=context, trigger=trigger[:128],
                    seq=0, tries=0, started_at=now, updated_at=now,
                )  # fmt: skip
                s.add(st)
                states.insert(0, st)
                started += 1
                continue
            run = Run(s, contact, now, self.language_of(contact))
            new = await self.start(run, flow, trigger=trigger, context=context, states=states)
            if new is not None:
                states.insert(0, new)
                started += 1
                await self.deliver(run, new, d)
        return started

    async def deliver(self, run: Run, st: FlowState, to: Decision) -> int:
        """Write what a run said outside a turn to the channel ``to`` chose (outbox)."""
        if not run.out or not to.send:
            return 0
        assert to.channel is not None and to.address is not None
        s, c = run.s, run.contact
        engine = self.runtime.engine
        conv = await engine.open_conversation(s, c, run.now)
        queued = replies(
            run.out,
            f"flow:{st.id}",
            first=st.seq,
            contact_id=c.id,
            conversation_id=conv.id,
            channel=to.channel,
            address=to.address,
            meta={"flow": st.flow_id},
            language=run.language,
        )
        st.seq += len(run.out)
        ids = [i for got in await engine.write(s, queued, now=run.now) for i in got]
        attrs = c.attributes or {}
        c.attributes = {
            **attrs,
            "prompts_unanswered": int(attrs.get("prompts_unanswered") or 0) + 1,
        }
        run.out = []
        return len(ids)

    async def run_due(self, now: datetime | None = None, limit: int = 200) -> int:
        """Resume flows whose wait ran out. Returns how many were resumed."""
        now = now or self.runtime.clock.now()
        db = self.runtime.db
        async with db.session() as s:
            q = (
                select(FlowState)
                .where(FlowState.status == WAITING, FlowState.due_at <= now)
                .order_by(FlowState.due_at)
                .limit(limit)
            )
            if db.is_postgres:
                q = q.with_for_update(skip_locked=True)
            rows = list((await s.execute(q)).scalars())
            for st in rows:
                contact = await s.get(Contact, st.contact_id)
                flow = self.book.get(st.flow_id)
                step = flow.step(st.step_id) if flow else None
                if contact is None or flow is None or step is None:
                    self._close(st, CANCELLED, now)
                    continue
                nxt = flow.following(step)
                to = await self.reach(s, contact, flow.purpose, now)
                if to.reason == "opted_out":  # stop means stop, for a flow under way too
                    self._close(st, CANCELLED, now)
                    continue
                conv_busy = (
                    await s.execute(
                        select(Conversation.id).where(
                            Conversation.contact_id == contact.id, Conversation.status == "handoff"
                        )
                    )
                ).first() is not None
                if not to.send or conv_busy:
                    st.status = PENDING
                    st.step_id = nxt if nxt != END else None
                    st.due_at = None
                    st.updated_at = now
                    if nxt == END:
                        self._close(st, DONE, now)
                    continue
                others = [o for o in await self.open_states(s, contact.id) if o.id != st.id]
                run = Run(s, contact, now, self.language_of(contact))
                st.due_at = None
                await self._advance(run, st, nxt, others=others)
                await self.deliver(run, st, to)
        if rows:
            self.runtime.worker.wake()
        return len(rows)

    async def run_all_due(self, now: datetime | None = None, batch: int = 200) -> int:
        """Resume every flow due at ``now``, a batch at a time (the ``flows due`` job)."""
        total = 0
        while (n := await self.run_due(now, batch)) >= batch:
            total += n
        return total + n

    async def expire(self, s: AsyncSession, now: datetime, after: timedelta) -> int:
        """Open flows nobody touched for ``after`` are dropped (set-based)."""
        result = await s.execute(
            update(FlowState)
            .where(
                FlowState.status.in_((ACTIVE, PAUSED, PENDING)),
                FlowState.updated_at < now - after,
            )
            .values(status=CANCELLED, updated_at=now, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result)
