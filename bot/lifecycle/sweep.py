"""The inactivity sweep: set-based SQL, one statement per rule and id range.

PostgreSQL moves contacts and records their transitions in one statement::

    WITH cand AS (SELECT id, lifecycle_stage AS old FROM contacts
                  WHERE id >= :lo AND id < :hi AND lifecycle_stage IN (...)
                    AND last_activity_at < :edge FOR UPDATE SKIP LOCKED),
         moved AS (UPDATE contacts SET lifecycle_stage = :to, ... FROM cand
                   WHERE contacts.id = cand.id RETURNING contacts.id, cand.old)
    INSERT INTO stage_transitions (...) SELECT ... FROM moved

SQLite (one writer at a time, ``BEGIN IMMEDIATE``) runs ``INSERT ... SELECT`` then ``UPDATE``
with the same condition in one transaction. Rules run in file order, so a person idle long
enough passes through at-risk on to churned in the same sweep. No Python loop over people:
only when something listens (``stage_changed`` receivers, flows triggered by the new stage)
are the moved contacts read back, in batches of 1000, to tell them: a receiver that takes
batches (the prompts feature) answers each batch with a few set-based statements.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, func, insert, literal, select, text, update

from bot.lifecycle.config import InactivityRule
from bot.lifecycle.machine import Move
from bot.lifecycle.models import StageTransition
from bot.storage.models import Contact
from bot.storage.paging import batches

if TYPE_CHECKING:
    from bot.lifecycle.service import LifecycleService

log = logging.getLogger(__name__)

CONTACTS = cast(Table, Contact.__table__)
TRANSITIONS = cast(Table, StageTransition.__table__)
NOTIFY_BATCH = 1000


async def run_sweep(
    svc: LifecycleService, now: datetime, *, signals: bool = True
) -> dict[str, int]:
    """Apply every inactivity rule; returns ``{rule: moved}`` and expires stale flows."""
    db = svc.db
    out: dict[str, int] = {}
    async with db.session() as s:
        top = (await s.execute(select(func.max(Contact.id)))).scalar_one_or_none() or 0
    chunk = svc.settings.sweep_chunk
    listening = signals and svc.runtime.signals.stage_changed.listened
    for rule in svc.config.inactivity:
        flows = bool(svc.book.by_trigger("stage", rule.to)) and svc.trigger_flows
        moved = 0
        for lo in range(0, top + 1, chunk):
            async with db.session() as s:
                first_id = (
                    await s.execute(select(func.max(StageTransition.id)))
                ).scalar_one_or_none() or 0
                n = await _move(s, db.is_postgres, rule, now, lo, lo + chunk)
                if n and (listening or flows):
                    if db.is_postgres:
                        # a plan per statement for what follows: tables that grow fast within
                        # a sweep (transitions, prompt actions) made cached generic plans, made
                        # while they were small, scan them whole on every batch
                        await s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
                    await _tell(svc, s, rule, now, first_id, notify=listening, flows=flows)
            moved += n
        out[rule.describe()] = moved
        if moved:
            log.info("lifecycle sweep: %s moved %d", rule.describe(), moved)
    async with db.session() as s:
        out["flows expired"] = await svc.runner.expire(s, now, svc.settings.flow_expire_after)
    if any(out.values()):
        svc.runtime.worker.wake()
    return out


def _where(rule: InactivityRule, now: datetime, lo: int, hi: int) -> Any:
    return and_(
        CONTACTS.c.id >= lo,
        CONTACTS.c.id < hi,
        CONTACTS.c.lifecycle_stage.in_(rule.sources),
        CONTACTS.c.last_activity_at < now - rule.after,
    )


def _transition(rule: InactivityRule, now: datetime) -> tuple[Any, ...]:
    """A transition row's columns after the contact and its old stage: to, cause, rule, times."""
    at = CONTACTS.c.updated_at.type
    return (
        literal(rule.to),
        literal("inactivity"),
        literal(rule.describe()),
        literal(now, at),
        literal(now, at),
    )


async def _move(
    s: Any, postgres: bool, rule: InactivityRule, now: datetime, lo: int, hi: int
) -> int:
    cols = ["contact_id", "from_stage", "to_stage", "cause", "rule", "occurred_at", "created_at"]
    if postgres:
        cand = (
            select(CONTACTS.c.id, CONTACTS.c.lifecycle_stage.label("old"))
            .where(_where(rule, now, lo, hi))
            .with_for_update(skip_locked=True)
            .cte("cand")
        )
        moved = (
            update(CONTACTS)
            .where(CONTACTS.c.id == cand.c.id, CONTACTS.c.lifecycle_stage == cand.c.old)
            .values(lifecycle_stage=rule.to, stage_entered_at=now, updated_at=now)
            .returning(CONTACTS.c.id, cand.c.old)
            .cte("moved")
        )
        stmt = insert(TRANSITIONS).from_select(
            cols,
            select(moved.c.id, moved.c.old, *_transition(rule, now)),
        )
        result = await s.execute(stmt)
        return int(result.rowcount or 0)
    where = _where(rule, now, lo, hi)
    ins = insert(TRANSITIONS).from_select(
        cols,
        select(CONTACTS.c.id, CONTACTS.c.lifecycle_stage, *_transition(rule, now)).where(where),
    )
    result = await s.execute(ins)
    n = int(result.rowcount or 0)
    if n:
        await s.execute(
            update(CONTACTS)
            .where(where)
            .values(lifecycle_stage=rule.to, stage_entered_at=now, updated_at=now)
        )
    return n


async def _tell(
    svc: LifecycleService,
    s: Any,
    rule: InactivityRule,
    now: datetime,
    after_id: int,
    *,
    notify: bool,
    flows: bool,
) -> None:
    """Signals and flows for the contacts this statement moved (read back in batches)."""
    moved = (
        select(StageTransition.id, StageTransition.from_stage, Contact)
        .join(Contact, Contact.id == StageTransition.contact_id)
        .where(StageTransition.cause == "inactivity")
    )
    async for rows in batches(s, moved, StageTransition.id, NOTIFY_BATCH, after=after_id):
        if notify:  # one call per batch for receivers that take batches (set-based)
            await svc.runtime.signals.stage_changed.send_many(
                [{"contact": contact, "old": old} for _, old, contact in rows],
                session=s,
                new=rule.to,
                cause="inactivity",
                now=now,
            )
        if not flows:
            continue
        for _, old, contact in rows:
            # the sweep moves contacts out of a stage: ``old`` is never None here
            m = Move(cast(str, old), rule.to, "inactivity", rule.describe(), now)
            started = svc._stage_flows(contact, m, now, {})
            if started:
                await svc.runner.trigger_outside(s, contact, started, now)
