"""Turning triggers into scheduled actions (rows of ``prompt_actions``).

One row per (contact, prompt, trigger instance): the instance key names the occurrence (the
event's id, the stage entry time, the schedule's local fire time, the attribute's date), so a
signal received twice, a sweep run by two processes, or both paths for the same occurrence
schedule it once. Re-entry rules decide whether a *new* occurrence may schedule the prompt
again. Sweeps are set-based where the due time does not depend on the person (schedules and
segments per time zone); otherwise they read candidate rows in keyed batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.prompts.definitions import Prompt, PromptBook
from bot.prompts.models import CANCELLED, PENDING, SENT, PromptAction
from bot.storage.dialect import insert_for as _insert
from bot.storage.dialect import rowcount
from bot.storage.models import Contact
from bot.storage.paging import batches

log = logging.getLogger(__name__)

HELD = "held"  # the holdout group: counted as an exposure, nothing sent
# statuses that count as "this prompt reached (or will reach) the person" for re-entry
_TAKEN = (PENDING, SENT, HELD)


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


def zone(name: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


@dataclass(frozen=True)
class NewAction:
    contact_id: int
    prompt: Prompt
    instance_key: str
    due_at: datetime
    context: Mapping[str, Any]


def reentry_blocked(prompt: Prompt, now: datetime, contact_id: Any) -> ColumnElement[bool]:
    """SQL: an earlier occurrence keeps this prompt from being scheduled again."""
    if prompt.reentry.mode == "always":
        return literal(False)
    a = PromptAction.__table__.alias("earlier")
    cond = and_(
        a.c.contact_id == contact_id,
        a.c.prompt_id == prompt.id,
        a.c.status.in_(_TAKEN),
    )
    if prompt.reentry.mode == "after":
        cond = and_(cond, or_(a.c.status == PENDING, a.c.due_at >= now - prompt.reentry.after))
    return exists().where(cond)


async def schedule(
    session: AsyncSession,
    actions: Sequence[NewAction],
    now: datetime,
    *,
    check_reentry: bool = True,
    chunk: int = 500,
) -> int:
    """Insert actions (skipping known instance keys and re-entries); returns how many.

    Per chunk: one re-entry query per prompt, then one executemany insert, so a batch of many
    people (the inactivity sweep) costs a few statements."""
    n = 0
    for i in range(0, len(actions), chunk):
        part = actions[i : i + chunk]
        blocked = await _reentry_blocked(session, part, now) if check_reentry else set()
        rows = [_row(a, now) for a in part if (a.contact_id, a.prompt.id) not in blocked]
        if not rows:
            continue
        stmt = (
            _insert(session)(PromptAction)
            .on_conflict_do_nothing(index_elements=["contact_id", "prompt_id", "instance_key"])
            .returning(PromptAction.id)
        )
        n += len((await session.execute(stmt, rows)).all())  # executemany, batched VALUES
    return n


async def _reentry_blocked(
    session: AsyncSession, actions: Sequence[NewAction], now: datetime
) -> set[tuple[int, str]]:
    """``(contact, prompt)`` pairs an earlier occurrence keeps from being scheduled again
    (the rule of :func:`reentry_blocked`, read by (contact, prompt) and checked here: with a
    status condition in SQL, a table that grew fast (stale planner statistics) was read through
    the due index, every pending row each time)."""
    blocked: set[tuple[int, str]] = set()
    by_prompt: dict[str, list[NewAction]] = {}
    for a in actions:
        by_prompt.setdefault(a.prompt.id, []).append(a)
    for group in by_prompt.values():
        prompt = group[0].prompt
        if prompt.reentry.mode == "always":
            continue
        ids = sorted({a.contact_id for a in group})
        rows = await session.execute(
            select(PromptAction.contact_id, PromptAction.status, PromptAction.due_at).where(
                PromptAction.contact_id.in_(ids), PromptAction.prompt_id == prompt.id
            )
        )
        edge = now - prompt.reentry.after
        for cid, status, due_at in rows:
            if status not in _TAKEN:
                continue
            if prompt.reentry.mode == "after" and status != PENDING and due_at < edge:
                continue
            blocked.add((int(cid), prompt.id))
    return blocked


def _row(a: NewAction, now: datetime) -> dict[str, Any]:
    return {
        "contact_id": a.contact_id,
        "prompt_id": a.prompt.id,
        "instance_key": a.instance_key,
        "due_at": a.due_at,
        "status": PENDING,
        "deferrals": 0,
        "context": dict(a.context),
        "created_at": now,
        "updated_at": now,
    }


# --- from signals ---------------------------------------------------------------------------


def event_fields(event: Any) -> tuple[str, datetime | None, dict[str, Any], str]:
    """(type, occurred_at, properties, instance id) of the lifecycle feature's event row."""
    etype = str(getattr(event, "type", None) or getattr(event, "event_type", ""))
    occurred = getattr(event, "occurred_at", None)
    props = getattr(event, "properties", None) or {}
    ident = (
        getattr(event, "event_id", None)
        or getattr(event, "external_id", None)
        or getattr(event, "id", None)
    )
    return etype, occurred, dict(props) if isinstance(props, Mapping) else {}, str(ident)


def _matches(where: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    for k, want in where.items():
        have = props.get(k)
        if isinstance(want, list):
            if have not in want and str(have) not in [str(w) for w in want]:
                return False
        elif have != want and str(have) != str(want):
            return False
    return True


def for_event(
    book: PromptBook,
    contact: Contact,
    event: Any,
    now: datetime,
    default_tz: str,
) -> list[NewAction]:
    etype, occurred, props, ident = event_fields(event)
    out: list[NewAction] = []
    tz = zone(contact.timezone, default_tz)
    start = occurred or now
    for p in book.by_trigger("event", etype):
        if not _matches(p.trigger.where, props):
            continue
        due = p.trigger.due(start, tz)
        if due + p.expire_after < now:
            continue  # a backfilled old event: far too late for this prompt
        context = {k: v for k, v in props.items() if isinstance(v, str | int | float)}
        out.append(NewAction(contact.id, p, f"ev:{ident}", due, context))
    return out


def for_stage(
    book: PromptBook, contact: Contact, stage: str, now: datetime, default_tz: str
) -> list[NewAction]:
    tz = zone(contact.timezone, default_tz)
    entered = contact.stage_entered_at or now
    return [
        NewAction(contact.id, p, f"stage:{stage}:{stamp(entered)}", p.trigger.due(entered, tz), {})
        for p in book.by_trigger("stage", stage)
    ]


def for_nps(
    book: PromptBook, contact: Contact, category: str, answer_id: int, now: datetime, tz_name: str
) -> list[NewAction]:
    tz = zone(contact.timezone, tz_name)
    return [
        NewAction(contact.id, p, f"nps:{answer_id}", p.trigger.due(now, tz), {})
        for p in book.by_trigger("nps", category)
    ]


async def cancel_on_exit(
    session: AsyncSession, book: PromptBook, contact_id: int, event_type: str, now: datetime
) -> int:
    """A pending reminder ends when its exit event happens (a review, a purchase...)."""
    ids = [p.id for p in book.prompts.values() if event_type in p.exit.events]
    if not ids:
        return 0
    res = await session.execute(
        update(PromptAction)
        .where(
            PromptAction.contact_id == contact_id,
            PromptAction.prompt_id.in_(ids),
            PromptAction.status == PENDING,
        )
        .values(status=CANCELLED, reason=f"exit:{event_type}"[:64], updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(res)


async def cancel_on_stage_left(
    session: AsyncSession,
    book: PromptBook,
    contact_ids: Sequence[int],
    old: str | None,
    now: datetime,
) -> int:
    """Pending prompts of the stage these people left are cancelled (if the prompt says so)."""
    ids = [p.id for p in book.by_trigger("stage", old) if old is not None and p.exit.stage_change]
    if not ids or not contact_ids:
        return 0
    res = await session.execute(
        update(PromptAction)
        .where(
            PromptAction.contact_id.in_(list(contact_ids)),
            PromptAction.prompt_id.in_(ids),
            PromptAction.status == PENDING,
        )
        .values(status=CANCELLED, reason="stage_changed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(res)


# --- sweeps ---------------------------------------------------------------------------------


async def _zones(session: AsyncSession) -> list[str | None]:
    return list((await session.execute(select(Contact.timezone).distinct())).scalars())


def _in_zone(tz_name: str | None) -> Any:
    """Contacts in the time zone ``tz_name`` (``None``: those without one)."""
    return Contact.timezone.is_(None) if tz_name is None else Contact.timezone == tz_name


async def _insert_for(
    session: AsyncSession,
    prompt: Prompt,
    instance_key: str,
    due: datetime,
    now: datetime,
    where: Iterable[Any],
) -> int:
    """INSERT INTO prompt_actions SELECT ... FROM contacts WHERE ``where`` (one statement): the
    prompt for every such contact its re-entry rule allows."""
    values = {
        "prompt_id": prompt.id,
        "instance_key": instance_key,
        "due_at": due,
        "status": PENDING,
        "deferrals": 0,
        "context": {},
        "created_at": now,
        "updated_at": now,
    }
    t = PromptAction.__table__
    query = select(Contact.id, *(literal(v, t.c[k].type) for k, v in values.items())).where(
        *where, ~reentry_blocked(prompt, now, Contact.id)
    )
    ins = _insert(session)(PromptAction).from_select(["contact_id", *values], query)
    ins = ins.on_conflict_do_nothing(index_elements=["contact_id", "prompt_id", "instance_key"])
    res = await session.execute(ins.execution_options(synchronize_session=False))
    return rowcount(res)


async def sweep_schedules(
    session: AsyncSession, book: PromptBook, now: datetime, horizon: timedelta, default_tz: str
) -> int:
    """Cron-like schedules in each contact's time zone: one INSERT ... SELECT per zone and
    fire time within the horizon."""
    prompts = book.by_trigger("schedule")
    if not prompts:
        return 0
    n = 0
    for tz_name in await _zones(session):
        tz = zone(tz_name, default_tz)
        for p in prompts:
            it = croniter(p.trigger.value, (now - timedelta(minutes=1)).astimezone(tz))
            while True:
                fire: datetime = it.get_next(datetime)
                if fire > now + horizon:
                    break
                if fire + p.expire_after < now:
                    continue
                key = f"cron:{fire.replace(tzinfo=None).isoformat(timespec='minutes')}"
                cond = [_in_zone(tz_name), p.trigger.audience.sql(now), p.audience.sql(now)]
                n += await _insert_for(session, p, key, fire.astimezone(UTC), now, cond)
    return n


async def sweep_segments(
    session: AsyncSession,
    book: PromptBook,
    now: datetime,
    default_tz: str,
    resolve: Callable[[str], Any] | None = None,
) -> int:
    """Segment membership: contacts in the segment, not blocked by re-entry, get the prompt
    (at its local ``at`` time, per time zone). ``resolve`` gives a segment of
    ``flows/lifecycle.yml`` by name (anything with ``.sql(now)``)."""
    prompts = book.by_trigger("segment")
    if not prompts:
        return 0
    n = 0
    zones = await _zones(session)
    for p in prompts:
        if p.trigger.audience:
            member = p.trigger.audience.sql(now)
        elif resolve is not None:
            member = resolve(p.trigger.value).sql(now)
        else:
            log.warning("prompt %s: segment %r is not known here", p.id, p.trigger.value)
            continue
        for tz_name in zones if p.trigger.at else [None]:
            tz = zone(tz_name, default_tz)
            due = p.trigger.due(now, tz)
            key = f"seg:{now.astimezone(tz).date().isoformat()}"
            cond: list[Any] = [member, p.audience.sql(now)]
            if p.trigger.at:
                cond.append(_in_zone(tz_name))
            n += await _insert_for(session, p, key, due, now, cond)
    return n


async def sweep_stages(
    session: AsyncSession,
    book: PromptBook,
    now: datetime,
    lookback: timedelta,
    default_tz: str,
    batch: int = 5000,
) -> int:
    """Contacts who entered a stage recently without the signal (bulk sweeps, imports)."""
    n = 0
    for p in book.by_trigger("stage"):
        entered_stage = select(Contact.id, Contact.timezone, Contact.stage_entered_at).where(
            Contact.lifecycle_stage == p.trigger.value,
            Contact.stage_entered_at >= now - lookback,
            p.audience.sql(now),
            ~reentry_blocked(p, now, Contact.id),
        )
        async for rows in batches(session, entered_stage, Contact.id, batch):
            new = []
            for cid, tz_name, entered in rows:
                if entered is None:
                    continue
                due = p.trigger.due(entered, zone(tz_name, default_tz))
                if due + p.expire_after < now:
                    continue
                new.append(NewAction(cid, p, f"stage:{p.trigger.value}:{stamp(entered)}", due, {}))
            n += await schedule(session, new, now, check_reentry=False)
    return n


def _attr_date(value: Any) -> date | datetime | None:
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) <= 10:
            return date.fromisoformat(text)
        d = datetime.fromisoformat(text)
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    except ValueError:
        return None


async def sweep_attributes(
    session: AsyncSession,
    book: PromptBook,
    now: datetime,
    horizon: timedelta,
    default_tz: str,
    batch: int = 5000,
) -> int:
    """Attribute dates (``attributes.subscription_renews_at`` minus 3 days): ISO 8601 texts,
    narrowed in SQL by their text range, then computed per person in their time zone."""
    n = 0
    for p in book.by_trigger("attribute"):
        col = Contact.attributes[p.trigger.value].as_string()
        shift = p.trigger.offset + p.trigger.delay
        # due = date + shift: the date lies in [now - shift - expire - 1d, now + horizon - shift + 1d]
        lo = (now - shift - p.expire_after - timedelta(days=1)).date().isoformat()
        hi = (now + horizon - shift + timedelta(days=2)).date().isoformat()
        last_id = 0
        while True:
            rows = (
                await session.execute(
                    select(Contact.id, Contact.timezone, col)
                    .where(
                        col.is_not(None),
                        col >= lo,
                        col < hi,
                        Contact.id > last_id,
                        p.audience.sql(now),
                        ~reentry_blocked(p, now, Contact.id),
                    )
                    .order_by(Contact.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                break
            last_id = rows[-1][0]
            new = []
            for cid, tz_name, raw in rows:
                value = _attr_date(raw)
                if value is None:
                    continue
                tz = zone(tz_name, default_tz)
                start = (
                    value
                    if isinstance(value, datetime)
                    else datetime.combine(value, datetime.min.time(), tzinfo=tz)
                )
                due = p.trigger.due(start, tz)
                if due > now + horizon or due + p.expire_after < now:
                    continue
                new.append(NewAction(cid, p, f"attr:{str(raw)[:64]}", due, {}))
            n += await schedule(session, new, now, check_reentry=False)
    return n


async def pending_count(session: AsyncSession) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).select_from(PromptAction).where(PromptAction.status == PENDING)
            )
        ).scalar_one()
    )
