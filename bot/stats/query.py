"""The pieces the chart queries share: a timestamp's UTC day and minutes between two as the
database computes them, the filters of each table, per-request memos, and the rounding and
ratios of the figures."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Date, and_, cast, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.handoff.models import Handoff
from bot.stats.filters import Filters
from bot.storage.models import Contact, Message

T = TypeVar("T")


def _postgres(s: AsyncSession) -> bool:
    return s.bind is not None and s.bind.dialect.name == "postgresql"


def utc_day(s: AsyncSession, col: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, as the database computes it."""
    if _postgres(s):
        return cast(func.timezone("UTC", col), Date)
    return func.date(col)


def minutes(s: AsyncSession, later: Any, earlier: Any) -> ColumnElement[Any]:
    """Minutes from ``earlier`` to ``later`` as the database computes them (NULL if either is)."""
    if _postgres(s):
        return func.extract("epoch", later - earlier) / 60.0
    return (func.julianday(later) - func.julianday(earlier)) * 1440.0


def iso(d: Any) -> str:
    return d.isoformat() if isinstance(d, date) else str(d)[:10]


def ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (linear between the nearest ranks), ``None`` for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def rounded(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


def in_range(col: Any, f: Filters) -> ColumnElement[bool]:
    return and_(col >= f.since, col < f.until)


def _table_filters(
    f: Filters, created_at: Any, language: Any, channel: Any
) -> list[ColumnElement[bool]]:
    out = [in_range(created_at, f)]
    if f.language:
        out.append(language == f.language)
    if f.channel:
        out.append(channel == f.channel)
    return out


def message_filters(f: Filters) -> list[ColumnElement[bool]]:
    return _table_filters(f, Message.created_at, Message.language, Message.channel)


def handoff_filters(f: Filters) -> list[ColumnElement[bool]]:
    return _table_filters(f, Handoff.created_at, Handoff.language, Handoff.channel)


def contact_filters(f: Filters) -> list[ColumnElement[bool]]:
    """Contacts of the language and channel filters (their preferred channel); no date."""
    out: list[ColumnElement[bool]] = []
    if f.language:
        out.append(Contact.language == f.language)
    if f.channel:
        out.append(Contact.preferred_channel == f.channel)
    return out


async def memo(s: AsyncSession, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
    """``compute()``'s result, once a session: charts of one request that read the same rows
    (kept in ``s.info`` under ``key``) query them once."""
    if key not in s.info:
        s.info[key] = await compute()
    return s.info[key]  # type: ignore[no-any-return]
