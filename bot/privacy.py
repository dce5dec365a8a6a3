"""Data protection: find a person by reference, export everything stored about them, erase it,
and delete old transcripts (``CONCIERGE_TRANSCRIPT_RETENTION_DAYS``).

A reference (REF) is a contact id, or ``telegram:<chat id>``, ``slack:<user id>``,
``web:<visitor id>``, ``user:<shop user id>`` or ``email:<address>``.

Every table that belongs to a person has a ``contact_id`` column; those are found through the
metadata, so a feature's new table is exported and erased without a change here. The outbox
is looked at besides: rows to the person's addresses, rows of their messages, and the staff
thread's copies of their conversation (Slack staff console: ``thread_id`` ``handoff:<id>``).
Erasing deletes the rows (the contact last); what is left is one ``staff_actions`` row: who
erased contact number N, when, and how many rows of each table went (no content).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import bot.storage.registry  # noqa: F401  (every feature's tables)
from bot.handoff.models import Handoff
from bot.staff import log_action
from bot.storage.dialect import rowcount
from bot.storage.models import Base, Contact, Identity, Message, OutboxMessage

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

REF_KINDS = ("telegram", "slack", "web", "user", "email")
REF_HELP = (
    "a contact id, or telegram:<chat id>, slack:<user id>, web:<visitor id>, "
    "user:<shop user id> or email:<address>"
)
# tables with a contact_id that are not the person's own data: the link is cut, the row stays
KEEP_ROWS = {"internal_employees", "staff_actions"}
RETENTION_SWEEP_SECONDS = 3600.0
RETENTION_BATCH = 1000


class RefError(ValueError):
    """The reference is not one of the kinds a person can be found by."""


def parse_ref(ref: str) -> tuple[str, str]:
    """``(kind, value)``; kind ``id`` for a bare contact id. Raises :class:`RefError`."""
    ref = ref.strip()
    if ref.isdigit():
        return "id", ref
    kind, sep, value = ref.partition(":")
    if not sep or kind not in REF_KINDS or not value.strip():
        raise RefError(f"unknown reference {ref!r}: use {REF_HELP}")
    return kind, value.strip()


async def find_contact(s: AsyncSession, ref: str) -> Contact | None:
    """The contact a reference names, or ``None`` when nobody has it."""
    kind, value = parse_ref(ref)
    if kind == "id":
        n = int(value)
        return await s.get(Contact, n) if 0 < n < 2**63 else None
    if kind == "user":
        stmt = select(Contact).where(Contact.user_id == value)
    elif kind == "email":
        stmt = select(Contact).where(func.lower(Contact.email) == value.lower())
    else:
        stmt = (
            select(Contact)
            .join(Identity, Identity.contact_id == Contact.id)
            .where(
                Identity.channel == kind,
                or_(Identity.external_id == value, Identity.address == value),
            )
        )
    return await s.scalar(stmt.order_by(Contact.id).limit(1))


def _person_tables() -> list[Table]:
    """Every table with a ``contact_id`` column, children before parents."""
    return [
        t
        for t in reversed(Base.metadata.sorted_tables)
        if "contact_id" in t.c and t.name not in ("outbox", "contacts")
    ]


def _table(model: type[Base]) -> Table:
    t = model.__table__
    assert isinstance(t, Table)
    return t


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(table: Table, row: Any) -> dict[str, Any]:
    return {c.name: _plain(v) for c, v in zip(table.c, row, strict=True)}


async def _outbox_ids(s: AsyncSession, contact: Contact) -> list[int]:
    """The outbox rows that carry something of this person."""
    ob = _table(OutboxMessage)
    idents = (
        await s.execute(
            select(Identity.channel, Identity.external_id, Identity.address).where(
                Identity.contact_id == contact.id
            )
        )
    ).all()
    conds: list[Any] = [
        ob.c.contact_id == contact.id,
        ob.c.message_id.in_(select(Message.id).where(Message.contact_id == contact.id)),
    ]
    for channel, external_id, address in idents:
        addrs = {a for a in (external_id, address) if a}
        conds.append((ob.c.channel == channel) & ob.c.address.in_(addrs))
    ids = set(await s.scalars(select(ob.c.id).where(or_(*conds))))
    # the Slack staff thread's copies of their conversation
    handoffs = set(await s.scalars(select(Handoff.id).where(Handoff.contact_id == contact.id)))
    if handoffs:
        threads = {f"handoff:{h}" for h in handoffs}
        rows = await s.execute(
            select(ob.c.id, ob.c.payload).where(
                ob.c.idempotency_key.like("staff-console:%"),
                ob.c.created_at >= contact.created_at,
            )
        )
        for oid, payload in rows:
            meta = (payload or {}).get("metadata") or {}
            if (payload or {}).get("thread_id") in threads or (
                meta.get("handoff_summary") in handoffs or meta.get("handoff") in handoffs
            ):
                ids.add(oid)
    return sorted(ids)


async def export_contact(s: AsyncSession, contact: Contact) -> dict[str, Any]:
    """One JSON-able document with every row stored about the person."""
    ctab = _table(Contact)
    doc: dict[str, Any] = {
        "contact": _row(ctab, (await s.execute(select(ctab).where(ctab.c.id == contact.id))).one())
    }
    for t in sorted(_person_tables(), key=lambda t: t.name):
        rows = (await s.execute(select(t).where(t.c.contact_id == contact.id))).all()
        doc[t.name] = [_row(t, r) for r in rows]
    ob = _table(OutboxMessage)
    ids = await _outbox_ids(s, contact)
    doc["outbox"] = [
        _row(ob, r) for r in (await s.execute(select(ob).where(ob.c.id.in_(ids)))).all()
    ]
    doc["feedback"] = [
        {"message_id": m["id"], "feedback": m["feedback"], "at": m["created_at"]}
        for m in doc.get("messages", [])
        if m.get("feedback")
    ]
    return doc


async def erase_contact(
    s: AsyncSession,
    contact: Contact,
    *,
    by: str,
    by_id: int | None,
    now: datetime,
    kind: str = "id",
) -> dict[str, int]:
    """Delete every row of the person (see the module's docstring); returns rows per table.
    Records who erased contact number N and when, without the erased data."""
    cid = contact.id
    counts: dict[str, int] = {}
    ob = _table(OutboxMessage)
    ids = await _outbox_ids(s, contact)
    for i in range(0, len(ids), 500):
        res = await s.execute(delete(ob).where(ob.c.id.in_(ids[i : i + 500])))
        counts["outbox"] = counts.get("outbox", 0) + rowcount(res)
    for t in _person_tables():
        if t.name in KEEP_ROWS:
            if t.c.contact_id.nullable and t.name != "staff_actions":
                await s.execute(update(t).where(t.c.contact_id == cid).values(contact_id=None))
            continue
        res = await s.execute(delete(t).where(t.c.contact_id == cid))
        n = rowcount(res)
        if n:
            counts[t.name] = n
    s.expunge(contact)
    await s.execute(delete(_table(Contact)).where(_table(Contact).c.id == cid))
    counts["contacts"] = 1
    await log_action(
        s,
        staff_id=by_id,
        staff_name=by,
        action="erase",
        now=now,
        contact_id=cid,
        detail={"ref_kind": kind, "rows": counts},
    )
    return counts


async def purge_transcripts(
    s: AsyncSession, *, before: datetime, limit: int = RETENTION_BATCH
) -> int:
    """Delete up to ``limit`` messages older than ``before`` (and their outbox rows that are
    done); returns how many messages went."""
    ids = list(
        await s.scalars(
            select(Message.id).where(Message.created_at < before).order_by(Message.id).limit(limit)
        )
    )
    if not ids:
        return 0
    ob = _table(OutboxMessage)
    await s.execute(
        delete(ob).where(ob.c.message_id.in_(ids), ob.c.status.in_(("sent", "dead", "cancelled")))
    )
    await s.execute(delete(Message).where(Message.id.in_(ids)))
    return len(ids)


async def retention_sweep(runtime: Runtime) -> int:
    """One round: every message older than the retention setting; returns how many went."""
    days = runtime.settings.transcript_retention_days
    if days <= 0:
        return 0
    total = 0
    while True:
        before = runtime.clock.now() - timedelta(days=days)
        async with runtime.db.session() as s:
            n = await purge_transcripts(s, before=before)
        total += n
        if n < RETENTION_BATCH:
            return total


def setup(runtime: Runtime) -> None:
    """Delete old transcripts every hour when ``CONCIERGE_TRANSCRIPT_RETENTION_DAYS`` > 0."""
    if runtime.settings.transcript_retention_days <= 0:
        return

    async def round(_now: datetime) -> int:
        n = await retention_sweep(runtime)
        if n:
            log.info("deleted %d messages older than the retention period", n)
        return n

    runtime.jobs.add("transcript retention", round, every=RETENTION_SWEEP_SECONDS)
