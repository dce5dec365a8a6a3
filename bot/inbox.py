"""The staff inbox's queries: the waiting list (filters, search, SLA), assigning, canned
replies per language, and the contact panel (stage history, events, consent, channels, flows,
prompts). Channel-neutral: the web console (``channels.web.admin``) renders what these return.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import ACTIVE, RESOLVED, Handoff
from bot.lifecycle.models import Event, FlowState, StageTransition
from bot.prompts.models import PromptSend
from bot.storage.models import Consent, Contact, Identity, Message

FILTERS = ("open", "mine", "unassigned", "resolved", "all")
CANNED_FILE = "canned_replies.yml"


def who(contact: Contact, identities: list[Identity] | None = None) -> str:
    """The customer's name, else an identifier a person recognises."""
    if contact.display_name:
        return contact.display_name
    if contact.email:
        return contact.email
    if identities:
        return f"{identities[0].channel}:{identities[0].external_id}"
    return contact.user_id or f"contact {contact.id}"


async def names(s: AsyncSession, contacts: Iterable[Contact]) -> dict[int, str]:
    """:func:`who` of each contact by its id, their identities read in one query."""
    contacts = list(contacts)
    idents: dict[int, list[Identity]] = {}
    if contacts:
        in_ids = Identity.contact_id.in_({c.id for c in contacts})
        for ident in (await s.execute(select(Identity).where(in_ids))).scalars():
            idents.setdefault(ident.contact_id, []).append(ident)
    return {c.id: who(c, idents.get(c.id)) for c in contacts}


def search_pattern(q: str) -> str:
    """The LIKE pattern of a search box's text, trimmed, cut and lower case ("": no search)."""
    q = q.strip()[:200].lower()
    return f"%{q}%" if q else ""


def contact_matches(like: str, *more: ColumnElement[bool]) -> ColumnElement[bool]:
    """A contact whose name, e-mail or a channel id matches ``like``, or one of ``more`` holds."""
    return or_(
        func.lower(Contact.display_name).like(like),
        func.lower(Contact.email).like(like),
        select(Identity.id)
        .where(Identity.contact_id == Contact.id, func.lower(Identity.external_id).like(like))
        .exists(),
        *more,
    )


@dataclass
class InboxItem:
    handoff: Handoff
    contact: Contact
    name: str
    last_question: str
    waiting_since: datetime | None  # the customer's message nobody answered yet


def _filtered(stmt: Select[Handoff, Contact], filt: str, me: str) -> Select[Handoff, Contact]:
    if filt == "open":
        return stmt.where(Handoff.status.in_(ACTIVE))
    if filt == "mine":
        return stmt.where(Handoff.status.in_(ACTIVE), Handoff.assignee == me)
    if filt == "unassigned":
        return stmt.where(Handoff.status.in_(ACTIVE), Handoff.assignee.is_(None))
    if filt == "resolved":
        return stmt.where(Handoff.status == RESOLVED)
    return stmt


async def inbox_items(
    s: AsyncSession, *, filt: str = "open", me: str = "", q: str = "", limit: int = 100
) -> list[InboxItem]:
    """Handoffs of a filter (open first by age; resolved newest first), searched by name,
    e-mail, channel id or words of the conversation."""
    stmt = select(Handoff, Contact).join(Contact, Contact.id == Handoff.contact_id)
    stmt = _filtered(stmt, filt if filt in FILTERS else "open", me)
    if like := search_pattern(q):
        said = select(Message.id).where(
            Message.conversation_id == Handoff.conversation_id, func.lower(Message.text).like(like)
        )
        stmt = stmt.where(contact_matches(like, said.exists()))
    order = Handoff.id.desc() if filt in ("resolved", "all") else Handoff.created_at
    rows = (await s.execute(stmt.order_by(order).limit(limit))).all()
    if not rows:
        return []
    convs = {h.conversation_id for h, _ in rows}
    # the last customer message per conversation, and the last staff one
    last_in: dict[int, tuple[str, datetime]] = {}
    last_staff: dict[int, datetime] = {}
    for conv_id, direction, sender, text, at in await s.execute(
        select(
            Message.conversation_id,
            Message.direction,
            Message.sender,
            Message.text,
            Message.created_at,
        ).where(
            Message.id.in_(
                select(func.max(Message.id))
                .where(Message.conversation_id.in_(convs))
                .group_by(Message.conversation_id, Message.direction, Message.sender)
            )
        )
    ):
        if direction == "in":
            last_in[conv_id] = (text, at)
        elif sender == "staff":
            last_staff[conv_id] = max(at, last_staff.get(conv_id, at))
    named = await names(s, (c for _, c in rows))
    items = []
    for h, c in rows:
        found = last_in.get(h.conversation_id)
        text, asked = found if found else ("", None)
        waiting: datetime | None = None
        if h.status in ACTIVE and asked is not None:
            staff_at = last_staff.get(h.conversation_id)
            waiting = asked if staff_at is None or staff_at < asked else None
        items.append(InboxItem(h, c, named[c.id], text, waiting))
    return items


async def assign(s: AsyncSession, handoff_id: int, assignee: str | None) -> Handoff | None:
    """Give an open handoff to a person (``None``: to nobody); ``None`` if it is not open."""
    h = await s.get(Handoff, handoff_id)
    if h is None or h.status == RESOLVED:
        return None
    h.assignee = assignee
    if assignee is None and h.status == "assigned":
        h.status = "open"
    elif assignee is not None and h.status == "open":
        h.status = "assigned"
    return h


def canned_replies(content_dir: Path) -> dict[str, list[dict[str, str]]]:
    """``canned_replies.yml`` of the content folder: ``{lang: [{title, text}]}`` (empty if
    the file is missing; a broken file is an error naming it)."""
    path = content_dir / CANNED_FILE
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}:1: expected a mapping of language -> list of replies")
    out: dict[str, list[dict[str, str]]] = {}
    for lang, items in data.items():
        if not isinstance(items, list):
            raise ValueError(f"{path}: {lang}: expected a list of {{title, text}}")
        out[str(lang)] = [
            {"title": str(i.get("title", "")), "text": str(i.get("text", ""))}
            for i in items
            if isinstance(i, dict) and i.get("text")
        ]
    return out


async def contact_panel(s: AsyncSession, contact_id: int) -> dict[str, Any] | None:
    """Everything the side panel shows about a person, newest first, a few of each."""
    c = await s.get(Contact, contact_id)
    if c is None:
        return None

    async def rows(stmt: Any) -> list[Any]:
        return list(await s.scalars(stmt))

    async def latest(model: Any, newest: Any = None) -> list[Any]:  # ten, newest first
        newest = model.id if newest is None else newest
        return await rows(
            select(model).where(model.contact_id == c.id).order_by(newest.desc()).limit(10)
        )

    identities = await rows(select(Identity).where(Identity.contact_id == c.id))
    return {
        "contact": c,
        "name": who(c, identities),
        "identities": identities,
        "stages": await latest(StageTransition),
        "events": await latest(Event, Event.occurred_at),
        "consents": await rows(select(Consent).where(Consent.contact_id == c.id)),
        "flows": await latest(FlowState),
        "prompts": await latest(PromptSend),
        "handoffs": await latest(Handoff),
    }


async def find_contacts(s: AsyncSession, q: str, limit: int = 50) -> list[tuple[Contact, str]]:
    """Contacts by name, e-mail, shop user id or channel id (the latest active first)."""
    stmt = select(Contact)
    if like := search_pattern(q):
        stmt = stmt.where(contact_matches(like, func.lower(Contact.user_id).like(like)))
    contacts = list(
        await s.scalars(
            stmt.order_by(Contact.last_activity_at.desc().nulls_last(), Contact.id.desc()).limit(
                limit
            )
        )
    )
    named = await names(s, contacts)
    return [(c, named[c.id]) for c in contacts]
