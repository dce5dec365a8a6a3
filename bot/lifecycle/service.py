"""The lifecycle feature: shop events in, stages and RFM kept, flows started (issue 6).

``LifecycleService.ingest(events)`` stores a batch of events once each (by the shop's id),
finds or creates the contacts by ``user_id``, applies the events in ``occurred_at`` order (a
late event replays the person's history), records every stage move with its cause, sends the
``event_recorded`` / ``stage_changed`` signals inside the transaction, and starts the flows
the events and stage changes trigger. ``sweep()`` applies the inactivity rules set-based.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.conditions import Facts
from bot.flows.model import Flow, FlowBook
from bot.flows.runner import FlowRunner
from bot.lifecycle import machine
from bot.lifecycle.config import LifecycleConfig
from bot.lifecycle.machine import Move, PastEvent
from bot.lifecycle.models import Event, StageTransition
from bot.lifecycle.schema import EventIn
from bot.lifecycle.settings import LifecycleSettings
from bot.storage.models import Consent, Contact
from bot.types import Outbound, Purpose

if TYPE_CHECKING:
    from bot.engine import Turn
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (...) list


@dataclass
class IngestResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    transitions: int = 0
    flows: int = 0

    def as_json(self, order: Sequence[str]) -> dict[str, Any]:
        fresh = set(self.accepted)
        results = []
        for i in order:  # the first of a new id is accepted, any repeat is a duplicate
            results.append({"id": i, "status": "accepted" if i in fresh else "duplicate"})
            fresh.discard(i)
        return {
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "transitions": self.transitions,
            "results": results,
        }


class LifecycleService:
    def __init__(
        self,
        runtime: Runtime,
        config: LifecycleConfig,
        book: FlowBook,
        settings: LifecycleSettings | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.book = book
        self.settings = settings or runtime.settings.lifecycle
        self.runner = FlowRunner(runtime, book)
        self.runner.record_event = self.record
        self.trigger_flows = True  # ``concierge simulate`` and imports may turn it off

    @property
    def db(self) -> Any:
        return self.runtime.db

    def now(self) -> datetime:
        return self.runtime.clock.now()

    # --- events in ---------------------------------------------------------------------------
    async def ingest(
        self,
        events: Sequence[EventIn],
        *,
        source: str = "api",
        trigger_flows: bool | None = None,
        now: datetime | None = None,
    ) -> IngestResult:
        """Store and apply a batch of events (one transaction). Idempotent by event id."""
        flows = self.trigger_flows if trigger_flows is None else trigger_flows
        for attempt in range(4):
            try:
                async with self.db.session() as s:
                    result = await self._ingest(s, events, source, flows, now or self.now())
                break
            except IntegrityError:
                # another request stored one of these events (or created one of these contacts)
                # at the same moment: run again, it is now a duplicate
                if attempt == 3:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        if result.flows:
            self.runtime.worker.wake()
        return result

    async def _ingest(
        self, s: AsyncSession, events: Sequence[EventIn], source: str, flows: bool, now: datetime
    ) -> IngestResult:
        result = IngestResult()
        unique: dict[str, EventIn] = {}
        for e in events:
            if e.id in unique:
                result.duplicates.append(e.id)
            else:
                unique[e.id] = e
        known: set[str] = set()
        ids = list(unique)
        for i in range(0, len(ids), _CHUNK):
            known.update(
                (
                    await s.execute(
                        select(Event.event_id).where(Event.event_id.in_(ids[i : i + _CHUNK]))
                    )
                )
                .scalars()
                .all()
            )
        result.duplicates.extend(i for i in ids if i in known)
        fresh = [e for e in unique.values() if e.id not in known]
        if not fresh:
            return result
        contacts = await self._contacts(s, sorted({e.user_id for e in fresh}), now)
        cids = [c.id for c in contacts.values()]
        marks: dict[int, datetime] = {}
        seen: set[tuple[int, str]] = set()
        types = sorted({e.type for e in fresh})
        for i in range(0, len(cids), _CHUNK):
            part = cids[i : i + _CHUNK]
            marks.update(
                (cid, when)
                for cid, when in (
                    await s.execute(
                        select(Event.contact_id, func.max(Event.occurred_at))
                        .where(Event.contact_id.in_(part))
                        .group_by(Event.contact_id)
                    )
                ).all()
            )
            seen.update(
                (cid, t)
                for cid, t in (
                    await s.execute(
                        select(Event.contact_id, Event.type)
                        .where(Event.contact_id.in_(part), Event.type.in_(types))
                        .distinct()
                    )
                ).all()
            )
        rows: dict[int, list[Event]] = defaultdict(list)
        for e in sorted(fresh, key=lambda e: (e.occurred_at, e.id)):
            c = contacts[e.user_id]
            mark = marks.get(c.id)
            row = Event(
                event_id=e.id,
                type=e.type,
                user_id=e.user_id,
                contact_id=c.id,
                occurred_at=e.occurred_at,
                received_at=now,
                properties=e.properties,
                source=source,
                late=mark is not None and e.occurred_at < mark,
            )
            s.add(row)
            rows[c.id].append(row)
        await s.flush()
        result.accepted = [e.id for e in fresh]
        by_id = {c.id: c for c in contacts.values()}
        for cid, evs in rows.items():
            t, f = await self._apply(s, by_id[cid], evs, now, flows=flows, seen=seen)
            result.transitions += t
            result.flows += f
        return result

    async def _contacts(
        self, s: AsyncSession, user_ids: list[str], now: datetime
    ) -> dict[str, Contact]:
        """The contacts of these shop users (created when new), locked against other batches."""
        found: dict[str, Contact] = {}
        for i in range(0, len(user_ids), _CHUNK):
            q = (
                select(Contact)
                .where(Contact.user_id.in_(user_ids[i : i + _CHUNK]))
                .order_by(Contact.id)
            )
            if self.db.is_postgres:
                q = q.with_for_update()
            for c in (await s.execute(q)).scalars():
                assert c.user_id is not None
                found[c.user_id] = c
        missing = [u for u in user_ids if u not in found]
        for uid in missing:
            c = Contact(
                user_id=uid,
                lifecycle_stage=self.config.initial,
                purchase_count=0,
                marketing_opt_out=False,
                attributes={},
                created_at=now,
                updated_at=now,
            )
            s.add(c)
            found[uid] = c
        if missing:
            await s.flush()
        return found

    async def _apply(
        self,
        s: AsyncSession,
        c: Contact,
        evs: list[Event],
        now: datetime,
        *,
        flows: bool,
        seen: set[tuple[int, str]],
    ) -> tuple[int, int]:
        """Apply one person's new events; returns (transitions, flows started)."""
        cfg = self.config
        signals = self.runtime.signals
        to_start: list[tuple[Flow, str, dict[str, Any]]] = []
        moves_total = 0
        late = any(e.late for e in evs)
        before_activity = c.last_activity_at
        for e in evs:
            first = (c.id, e.type) not in seen
            seen.add((c.id, e.type))
            props = dict(e.properties or {})
            facts = {**props, "type": e.type, "first": first}
            if not c.language and (lang := self._language(props.get("language"))):
                c.language = lang  # the shop knows it before the person writes to us
            moves = machine.apply_event(
                cfg,
                c,
                e.type,
                props,
                e.occurred_at,
                key=e.event_id,
                stage=not late,
                event_facts=facts,
            )
            c.updated_at = now
            for m in moves:
                await self._record_move(s, c, m, now, event_row=e if m.event_key else None)
                to_start += self._stage_flows(c, m, now, props)
            moves_total += len(moves)
            await signals.event_recorded.send(session=s, contact=c, event=e)
            to_start += self._event_flows(c, e, now, first)
        if late:
            moves_total += await self._replay(s, c, now, before_activity, evs, to_start)
        started = 0
        if flows and to_start:
            started = await self.runner.trigger_outside(s, c, to_start, now)
        return moves_total, started

    def _language(self, value: Any) -> str | None:
        """``properties.language`` of an event (``de``, ``de-AT``) if the shop answers it."""
        if not isinstance(value, str):
            return None
        code = value.strip().lower().replace("_", "-")
        for candidate in (code, code.split("-", 1)[0]):
            if candidate in self.runtime.settings.languages:
                return candidate
        return None

    async def _replay(
        self,
        s: AsyncSession,
        c: Contact,
        now: datetime,
        before_activity: datetime | None,
        evs: list[Event],
        to_start: list[tuple[Flow, str, dict[str, Any]]],
    ) -> int:
        """A late event: the stage and RFM become what the history in time order gives."""
        history = [
            PastEvent(r.event_id, r.type, r.occurred_at, r.properties or {})
            for r in (
                await s.execute(
                    select(Event)
                    .where(Event.contact_id == c.id)
                    .order_by(Event.occurred_at, Event.id)
                )
            ).scalars()
        ]
        replayed, _ = machine.replay(self.config, c, history)
        activity = max(
            filter(None, (replayed.last_activity_at, before_activity, c.last_activity_at)),
            default=None,
        )
        replayed.last_activity_at = activity
        machine.idle_moves(self.config, replayed, now)
        c.purchase_count = replayed.purchase_count
        c.monetary_total = replayed.monetary_total
        c.first_purchase_at = replayed.first_purchase_at
        c.last_purchase_at = replayed.last_purchase_at
        c.last_activity_at = activity
        if replayed.lifecycle_stage == c.lifecycle_stage:
            return 0
        m = Move(
            c.lifecycle_stage,
            replayed.lifecycle_stage,
            "replay",
            f"events arrived out of order: {len(history)} replayed by occurred_at",
            now,
            evs[-1].event_id,
        )
        c.lifecycle_stage = m.new
        c.stage_entered_at = replayed.stage_entered_at or now
        await self._record_move(s, c, m, now, event_row=evs[-1])
        to_start += self._stage_flows(c, m, now, dict(evs[-1].properties or {}))
        return 1

    async def _record_move(
        self,
        s: AsyncSession,
        c: Contact,
        m: Move,
        now: datetime,
        *,
        event_row: Event | None,
    ) -> None:
        s.add(
            StageTransition(
                contact_id=c.id,
                from_stage=m.old,
                to_stage=m.new,
                cause=m.cause,
                event_id=event_row.id if event_row is not None else None,
                rule=m.rule,
                occurred_at=m.at,
                created_at=now,
            )
        )
        await self.runtime.signals.stage_changed.send(
            session=s, contact=c, old=m.old, new=m.new, cause=m.cause, now=now
        )

    def _window(self, flow_within: timedelta | None) -> timedelta:
        return flow_within or self.settings.event_trigger_within

    def _event_flows(
        self, c: Contact, e: Event, now: datetime, first: bool
    ) -> list[tuple[Flow, str, dict[str, Any]]]:
        out = []
        props = dict(e.properties or {})
        for flow, trig in self.book.triggers("event", e.type):
            if now - e.occurred_at > self._window(trig.within):
                continue  # a backfilled old event: too late for this flow
            if trig.first and not first:
                continue
            if not self.runner.matches(trig, c, now, {**props, "type": e.type, "first": first}):
                continue
            out.append((flow, f"event:{e.type}", {"event": props, "event_id": e.event_id}))
        return out

    def _stage_flows(
        self, c: Contact, m: Move, now: datetime, props: dict[str, Any]
    ) -> list[tuple[Flow, str, dict[str, Any]]]:
        out = []
        for flow, trig in self.book.triggers("stage", m.new):
            if now - m.at > self._window(trig.within):
                continue
            if self.runner.matches(trig, c, now, props):
                out.append((flow, f"stage:{m.new}", {"event": props, "stage": m.new}))
        return out

    async def record(
        self,
        s: AsyncSession,
        contact: Contact,
        etype: str,
        props: dict[str, Any],
        now: datetime,
        key: str,
    ) -> None:
        """An event recorded by a flow step (``record: lead_captured``), applied like the shop's."""
        if (await s.execute(select(Event.id).where(Event.event_id == key))).first() is not None:
            return
        seen = {
            (contact.id, t)
            for t in (
                await s.execute(select(Event.type).where(Event.contact_id == contact.id).distinct())
            ).scalars()
        }
        row = Event(
            event_id=key,
            type=etype,
            user_id=contact.user_id,
            contact_id=contact.id,
            occurred_at=now,
            received_at=now,
            properties=props,
            source="bot",
            late=False,
        )
        s.add(row)
        await s.flush()
        await self._apply(s, contact, [row], now, flows=self.trigger_flows, seen=seen)

    # --- the person's stage in answers ---------------------------------------------------------
    async def followup_hook(self, turn: Turn) -> None:
        """After an answer to an intent with follow-ups, the first one whose segment fits."""
        items = self.config.followups.get(turn.intent)
        if not items or turn.answer_meta.get("policy") != "faq" or not turn.replies:
            return
        facts = Facts(turn.contact, turn.now)
        for f in items:
            try:
                fits = f.when.eval(facts)
            except Exception:
                log.exception("follow-up condition failed")
                continue
            if fits:
                if f.purpose == "marketing" and not await self._marketing_ok(turn):
                    return
                out = turn.engine.responses.render(f.response, turn.language)
                if out is not None:
                    if f.purpose == "marketing":
                        out = Outbound(
                            text=out.text, buttons=out.buttons, purpose=Purpose.MARKETING
                        )
                        conv = turn.conversation
                        conv.state = {**conv.state, "marketing_line": turn.message.id}
                    turn.replies.append(out)
                    turn.answer_meta["followup"] = f.response
                return

    async def _marketing_ok(self, turn: Turn) -> bool:
        """A marketing line after an answer: only to a person who consented to marketing (on
        this channel or all), never after "stop", at most once a conversation, and never in a
        support conversation (an open handoff, an unsure streak)."""
        c, conv = turn.contact, turn.conversation
        if c.marketing_opt_out or conv.state.get("marketing_line") is not None:
            return False
        if conv.status == "handoff" or (conv.unsure_streak or 0) > 0:
            return False
        rows = await turn.session.execute(
            select(Consent.channel, Consent.granted).where(
                Consent.contact_id == c.id,
                Consent.purpose == "marketing",
                Consent.channel.in_((turn.inbound.channel, "*")),
            )
        )
        given = {ch: bool(ok) for ch, ok in rows.all()}
        return bool(given.get(turn.inbound.channel, given.get("*", False)))

    # --- inactivity ---------------------------------------------------------------------------
    async def sweep(self, now: datetime | None = None, *, signals: bool = True) -> dict[str, int]:
        from bot.lifecycle.sweep import run_sweep

        return await run_sweep(self, now or self.now(), signals=signals)


def service_of(runtime: Runtime) -> LifecycleService:
    return runtime.service(LifecycleService)
