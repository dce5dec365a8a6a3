"""Every conversation, bot-only ones included: search, filters, and the transcript with the
NLU's intent and confidence on each turn.

Each message row already carries ``intent``, ``confidence``, ``language`` and ``feedback``;
a bot reply's ``meta`` says which policy answered and, when it did not, why (``fallback``:
``clarify`` or ``default`` / ``offer_human`` / ``out_of_scope`` / ``language_not_served``).
The outcome filters read those:

- answered: a reply of the FAQ policy that was no fallback
- clarified: a reply that asked "did you mean ...?"
- fallback: a reply that could not answer
- handed off: the conversation has a handoff
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import Handoff
from bot.inbox import contact_matches, names, search_pattern
from bot.storage.models import Contact, Conversation, Message

OUTCOMES = ("answered", "clarified", "fallback", "handed_off")
FALLBACKS = ("default", "offer_human", "out_of_scope", "language_not_served")


@dataclass
class ConversationFilter:
    q: str = ""
    channel: str = ""
    language: str = ""
    outcome: str = ""
    intent: str = ""
    not_helpful: bool = False


def _out(*conds: ColumnElement[bool]) -> ColumnElement[bool]:
    return (
        select(Message.id)
        .where(Message.conversation_id == Conversation.id, Message.direction == "out", *conds)
        .exists()
    )


def _outcome(outcome: str) -> ColumnElement[bool] | None:
    fallback = Message.meta["fallback"].as_string()
    if outcome == "answered":
        return _out(Message.meta["policy"].as_string() == "faq", fallback.is_(None))
    if outcome == "clarified":
        return _out(fallback == "clarify")
    if outcome == "fallback":
        return _out(fallback.in_(FALLBACKS))
    if outcome == "handed_off":
        return select(Handoff.id).where(Handoff.conversation_id == Conversation.id).exists()
    return None


def _where(
    stmt: Select[Conversation, Contact], f: ConversationFilter
) -> Select[Conversation, Contact]:
    def has_message(*conds: ColumnElement[bool]) -> ColumnElement[bool]:
        return select(Message.id).where(Message.conversation_id == Conversation.id, *conds).exists()

    if f.channel:
        stmt = stmt.where(has_message(Message.channel == f.channel))
    if f.language:
        stmt = stmt.where(has_message(Message.direction == "in", Message.language == f.language))
    if f.intent:
        stmt = stmt.where(has_message(Message.direction == "in", Message.intent == f.intent))
    if f.not_helpful:
        stmt = stmt.where(has_message(Message.feedback == "not_helpful"))
    if f.outcome and (cond := _outcome(f.outcome)) is not None:
        stmt = stmt.where(cond)
    if like := search_pattern(f.q):
        stmt = stmt.where(contact_matches(like, has_message(func.lower(Message.text).like(like))))
    return stmt


@dataclass
class ConversationRow:
    conversation: Conversation
    contact: Contact
    messages: int
    first_question: str
    last_at: datetime | None
    name: str


async def search(
    s: AsyncSession, f: ConversationFilter, *, limit: int = 50, offset: int = 0
) -> list[ConversationRow]:
    """Conversations matching ``f``, the latest first."""
    stmt = _where(
        select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id), f
    )
    rows = (
        await s.execute(
            stmt.order_by(
                func.coalesce(Conversation.last_message_at, Conversation.updated_at).desc(),
                Conversation.id.desc(),
            )
            .limit(limit)
            .offset(offset)
        )
    ).all()
    ids = [c.id for c, _ in rows]
    counts: dict[int, int] = {}
    first: dict[int, str] = {}
    if ids:
        counts = dict(
            (
                await s.execute(
                    select(Message.conversation_id, func.count())
                    .where(Message.conversation_id.in_(ids))
                    .group_by(Message.conversation_id)
                )
            ).all()
        )
        firsts = select(func.min(Message.id)).where(
            Message.conversation_id.in_(ids), Message.direction == "in"
        )
        for conv_id, text in await s.execute(
            select(Message.conversation_id, Message.text).where(
                Message.id.in_(firsts.group_by(Message.conversation_id))
            )
        ):
            first[conv_id] = text
    named = await names(s, (ct for _, ct in rows))
    return [
        ConversationRow(
            c,
            ct,
            counts.get(c.id, 0),
            first.get(c.id, ""),
            c.last_message_at,
            named[ct.id],
        )
        for c, ct in rows
    ]


def outcome_of(m: Message) -> str | None:
    """A bot reply's outcome (see the module's docstring); ``None`` for other messages."""
    if m.direction != "out" or m.sender != "bot":
        return None
    meta = m.meta or {}
    if meta.get("handoff") is not None:
        return "handed_off"
    fb = meta.get("fallback")
    if fb == "clarify":
        return "clarified"
    if fb in FALLBACKS:
        return "fallback"
    if meta.get("policy") == "faq":
        return "answered"
    return None


async def transcript(s: AsyncSession, conversation_id: int, limit: int = 500) -> list[Message]:
    return list(
        await s.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id)
            .limit(limit)
        )
    )


async def facets(s: AsyncSession) -> dict[str, list[str]]:
    """The channels, languages and intents that occur, for the filter menus."""

    async def distinct(col: Any, *conds: ColumnElement[bool]) -> list[str]:
        rows = await s.execute(select(col).where(col.is_not(None), *conds).distinct().limit(300))
        return sorted(str(v) for v in rows.scalars())

    return {
        "channels": await distinct(Message.channel),
        "languages": await distinct(Message.language, Message.direction == "in"),
        "intents": await distinct(Message.intent, Message.direction == "in"),
    }
