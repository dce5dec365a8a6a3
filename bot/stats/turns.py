"""The assistant's turns and their outcome, from what the engine stores with each reply
(``meta.policy`` and ``meta.fallback``). A turn's replies share their conversation and time, so
a turn counts once however many messages it sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.stats.filters import Filters
from bot.stats.query import message_filters, utc_day
from bot.storage.models import Message

OUTCOMES = ("answered", "clarified", "fallback", "handed_off")


def _outcome_expr() -> ColumnElement[str]:
    fallback = Message.meta["fallback"].as_string()
    policy = Message.meta["policy"].as_string()
    return case(
        (fallback == "clarify", literal("clarified")),
        (fallback.is_not(None), literal("fallback")),
        (policy == "error", literal("fallback")),
        (policy == "handoff", literal("handed_off")),
        else_=literal("answered"),
    )


def turns(s: AsyncSession, f: Filters, *extra: Any) -> Any:
    """The assistant's turns of the range: one row a turn (its replies share conversation and
    time), with its day, its outcome and ``extra`` columns."""
    return (
        select(
            Message.conversation_id,
            Message.created_at,
            utc_day(s, Message.created_at).label("d"),
            _outcome_expr().label("outcome"),
            *extra,
        )
        .where(
            Message.direction == "out",
            Message.sender == "bot",
            Message.meta["policy"].as_string().is_not(None),
            *message_filters(f),
        )
        .distinct()
        .subquery()
    )
