"""People and their identities: find or create, link to the shop's user id, merge."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.dialect import is_postgres
from bot.storage.models import (
    Base,
    Consent,
    Contact,
    Conversation,
    Identity,
    Message,
)


async def resolve_identity(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    now: datetime,
    address: str | None = None,
    display_name: str | None = None,
    language: str | None = None,
) -> tuple[Contact, Identity]:
    """The contact and identity behind ``(channel, external_id)``, created on first contact."""
    found = await find_identity(session, channel, external_id)
    if found is not None:
        contact, identity = found
        seen(identity, contact, now=now, address=address, display_name=display_name)
        return found
    contact, identity = _new_person(channel, external_id, address, display_name, now, language)
    session.add(contact)
    await session.flush()
    identity.contact_id = contact.id
    session.add(identity)
    await session.flush()
    return contact, identity


async def find_identity(
    session: AsyncSession, channel: str, external_id: str
) -> tuple[Contact, Identity] | None:
    """The contact and identity behind ``(channel, external_id)``, if there are any."""
    row = (
        await session.execute(_IDENTITY, {"channel": channel, "external_id": external_id})
    ).first()
    return None if row is None else (row[1], row[0])


# built once: a statement's construction costs more than its (cached) compilation
_IDENTITY = (
    select(Identity, Contact)
    .join(Contact, Contact.id == Identity.contact_id)
    .where(
        Identity.channel == bindparam("channel"), Identity.external_id == bindparam("external_id")
    )
)


def seen(
    identity: Identity,
    contact: Contact,
    *,
    now: datetime,
    address: str | None = None,
    display_name: str | None = None,
) -> None:
    """A known identity wrote again: remember when, and a new address or name."""
    if identity.last_seen_at is None or (now - identity.last_seen_at).total_seconds() > 60:
        identity.last_seen_at = now  # minute precision spares an UPDATE a message
        contact.last_seen_at = now
    if address and identity.address != address:
        identity.address = address
    if display_name and not identity.display_name:
        identity.display_name = display_name
    if display_name and not contact.display_name:
        contact.display_name = display_name


def _new_person(
    channel: str,
    external_id: str,
    address: str | None,
    name: str | None,
    now: datetime,
    language: str | None = None,
) -> tuple[Contact, Identity]:
    """A new contact and its first identity, not added to a session yet."""
    contact = Contact(
        display_name=name,
        language=language,
        created_at=now,
        updated_at=now,
        last_seen_at=now,
        attributes={},
    )
    identity = Identity(
        channel=channel,
        external_id=external_id,
        address=address or external_id,
        display_name=name,
        created_at=now,
        last_seen_at=now,
    )
    return contact, identity


async def create_people(
    session: AsyncSession, people: list[tuple[str, str, str | None, str | None]], now: datetime
) -> list[tuple[Identity, Contact, Conversation]]:
    """New contacts, each with its first identity and an open conversation, for
    ``(channel, external_id, address, display_name)``: a statement a table, however many."""
    ids: tuple[int, int, int] | None = None
    if len(people) > 1 and not is_postgres(session):
        # the ORM inserts rows whose keys the database picks a row at a time (to read each
        # key back); this transaction holds SQLite's write lock from its BEGIN IMMEDIATE, so
        # the keys are known up front (SQLite's own choice: the largest plus one)
        top = (await session.execute(_TOP_IDS)).one()
        ids = (top[0] or 0, top[1] or 0, top[2] or 0)
    out = []
    for n, (channel, external_id, address, name) in enumerate(people, start=1):
        contact, identity = _new_person(channel, external_id, address, name, now)
        conv = Conversation(created_at=now, updated_at=now, state={})
        if ids is not None:
            contact.id, identity.id, conv.id = ids[0] + n, ids[1] + n, ids[2] + n
        out.append((identity, contact, conv))
    if ids is None:  # the contacts' keys first, from the database
        session.add_all([c for _, c, _ in out])
        await session.flush()
    for identity, contact, conv in out:
        identity.contact_id = conv.contact_id = contact.id
    session.add_all([x for i, c, v in out for x in (c, i, v)])
    await session.flush()
    return out


_TOP_IDS = select(
    select(func.max(Contact.id)).scalar_subquery(),
    select(func.max(Identity.id)).scalar_subquery(),
    select(func.max(Conversation.id)).scalar_subquery(),
)


async def contact_for_user(session: AsyncSession, user_id: str, now: datetime) -> Contact:
    """The contact with the shop's ``user_id``, created if the shop never told us of it."""
    contact = (
        await session.execute(select(Contact).where(Contact.user_id == user_id))
    ).scalar_one_or_none()
    if contact is None:
        contact = Contact(user_id=user_id, created_at=now, updated_at=now, attributes={})
        session.add(contact)
        await session.flush()
    return contact


async def link_user(
    session: AsyncSession, identity: Identity, user_id: str, now: datetime
) -> Contact:
    """Make ``identity`` belong to the shop user ``user_id``; merge the anonymous contact.

    Everything the anonymous contact had (identities, conversation, messages, queued messages)
    moves to the known contact, so one person is one contact (design §2).
    """
    current = await session.get(Contact, identity.contact_id)
    assert current is not None
    if current.user_id == user_id:
        return current
    if current.user_id is None:
        existing = (
            await session.execute(select(Contact).where(Contact.user_id == user_id))
        ).scalar_one_or_none()
        if existing is None:
            current.user_id = user_id
            current.updated_at = now
            return current
        await merge_contacts(session, source=current, target=existing, now=now)
        return existing
    # identity belonged to another known user: move only this identity
    target = await contact_for_user(session, user_id, now)
    identity.contact_id = target.id
    return target


async def merge_contacts(
    session: AsyncSession, *, source: Contact, target: Contact, now: datetime
) -> None:
    """Everything of ``source`` becomes ``target``'s, in every table with a ``contact_id``
    (identities, conversations, messages, the outbox, consents, handoffs, flows, events,
    prompts' history, ...: a feature's new table too); then ``source`` goes. Where a unique
    constraint allows one row per person (a consent per channel and purpose, a prompt's
    assignment) and both have one, the target's stays and the source's goes with it."""
    import bot.storage.registry  # noqa: F401  (every feature's tables, none left behind)

    for table in Base.metadata.sorted_tables:
        if "contact_id" in table.c and table.name != "contacts":
            clash = _no_clash(table, target.id)
            await session.execute(
                update(table)
                .where(table.c.contact_id == source.id, *clash)
                .values(contact_id=target.id)
            )
            if clash:  # what stayed behind is the source's duplicate of a row the target has
                await session.execute(delete(table).where(table.c.contact_id == source.id))
    target.display_name = target.display_name or source.display_name
    target.language = target.language or source.language
    target.timezone = target.timezone or source.timezone
    target.marketing_opt_out = target.marketing_opt_out or source.marketing_opt_out
    target.last_seen_at = max(filter(None, (target.last_seen_at, source.last_seen_at)), default=now)
    target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
    target.updated_at = now
    await session.flush()
    await session.delete(source)
    await session.flush()


async def purge_anonymous(
    session: AsyncSession, *, channel: str, before: datetime, limit: int = 1000
) -> int:
    """Delete up to ``limit`` anonymous visitors of ``channel`` who never wrote: no shop user
    id, no message, no identity on another channel, not seen since ``before``. Their
    identities, conversations and consents go with them. Returns how many contacts went."""
    other_channel = (
        select(Identity.id)
        .where(Identity.contact_id == Contact.id, Identity.channel != channel)
        .exists()
    )
    ids = list(
        await session.scalars(
            select(Contact.id)
            .where(
                Contact.user_id.is_(None),
                func.coalesce(Contact.last_seen_at, Contact.created_at) < before,
                select(Identity.id)
                .where(Identity.contact_id == Contact.id, Identity.channel == channel)
                .exists(),
                ~other_channel,
                ~select(Message.id).where(Message.contact_id == Contact.id).exists(),
            )
            .order_by(Contact.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    for model in (Identity, Conversation, Consent):
        await session.execute(delete(model).where(model.contact_id.in_(ids)))
    await session.execute(delete(Contact).where(Contact.id.in_(ids)))
    return len(ids)


def _no_clash(table: Table, contact_id: int) -> list[ColumnElement[bool]]:
    """For each unique constraint with ``contact_id``: no row of ``contact_id`` has the same
    other values already."""
    other = table.alias()
    return [
        ~exists().where(
            other.c.contact_id == contact_id,
            *(other.c[c.name] == c for c in u.columns if c.name != "contact_id"),
        )
        for u in table.constraints
        if isinstance(u, UniqueConstraint) and "contact_id" in u.columns
    ]
