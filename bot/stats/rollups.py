"""The daily roll-ups: the figures of each closed UTC day, stored once (table ``stats_daily``,
migration ``0009_dashboard``) so that a year of days is 365 rows to read, not a million
messages. The charts read the closed days from here and count the open ones live."""

from __future__ import annotations

import typing
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Table, distinct, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.stats.filters import Filters
from bot.stats.query import in_range, iso, utc_day
from bot.stats.turns import turns
from bot.storage.models import Base, Message


class DailyStat(Base):
    """A figure of one closed UTC day (migration ``0009_dashboard``): computed once, by the
    roll-up job (:class:`RollupJob`) or else when a dashboard first asks for that day, from the
    messages of the day, and read from here since
    (a year of days is 365 rows, not a million messages). ``*`` is every language / channel;
    ``?`` a message without one. Conversations are counted at each of the four levels (a
    conversation counts once a day however many languages or channels it used); the
    assistant's turns by outcome at (language, channel) only, summed when read."""

    __tablename__ = "stats_daily"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


ALL = "*"
NONE = "?"
DONE = "_computed"  # the marker of a day whose figures are stored
CLOSED_AFTER = timedelta(minutes=10)  # a day is closed this long after its end (late commits)


def _closed_days(f: Filters, now: datetime) -> list[str]:
    """The range's days that ended (roll-ups are kept for those only; the rest is live)."""
    cutoff = (now - CLOSED_AFTER).date().isoformat()
    return [d for d in f.days if d < cutoff]


async def ensure_rollups(s: AsyncSession, days: list[str]) -> int:
    """Compute and store the figures of the days among ``days`` that have none yet; how many
    days that was. Several processes (and the lazy path next to :class:`RollupJob`) may do the
    same day at once: they compute the same rows, and the second insert does nothing."""
    if not days:
        return 0
    done = set(
        await s.scalars(
            select(DailyStat.day).where(
                DailyStat.metric == DONE, DailyStat.day >= days[0], DailyStat.day <= days[-1]
            )
        )
    )
    missing = [d for d in days if d not in done]
    if not missing:
        return 0
    f = Filters(date.fromisoformat(missing[0]), date.fromisoformat(missing[-1]))
    rows: dict[tuple[str, str, str, str], int] = {}
    lang = func.coalesce(Message.language, NONE)
    chan = func.coalesce(Message.channel, NONE)
    d = utc_day(s, Message.created_at).label("d")
    for by_lang, by_chan in ((False, False), (True, False), (False, True), (True, True)):
        cols: list[Any] = [d]
        cols.append(lang.label("l") if by_lang else literal(ALL).label("l"))
        cols.append(chan.label("c") if by_chan else literal(ALL).label("c"))
        group: list[Any] = [d, *([lang] if by_lang else []), *([chan] if by_chan else [])]
        q = (
            select(*cols, func.count(distinct(Message.conversation_id)), func.count())
            .where(Message.direction == "in", in_range(Message.created_at, f))
            .group_by(*group)
        )
        for r in await s.execute(q):
            where = (iso(r[0]), str(r[1]), str(r[2]))
            rows[(*where, "conversations")] = int(r[3])
            rows[(*where, "customer_messages")] = int(r[4])
    t = turns(s, f, lang.label("l"), chan.label("c"))
    q2 = select(t.c.d, t.c.l, t.c.c, t.c.outcome, func.count()).group_by(
        t.c.d, t.c.l, t.c.c, t.c.outcome
    )
    for day, lg, ch, oc, n in await s.execute(q2):
        rows[(iso(day), str(lg), str(ch), f"turns_{oc}")] = int(n)
    for day in missing:
        rows[(day, ALL, ALL, DONE)] = 0
    wanted = set(missing)
    todo = [  # in key order: two transactions inserting the same rows cannot deadlock
        {"day": k[0], "language": k[1], "channel": k[2], "metric": k[3], "value": v}
        for k, v in sorted(rows.items())
        if k[0] in wanted
    ]
    table = typing.cast(Table, DailyStat.__table__)
    pg = s.bind is not None and s.bind.dialect.name == "postgresql"
    stmt = (pg_insert(table) if pg else sqlite_insert(table)).on_conflict_do_nothing()
    for i in range(0, len(todo), 2000):
        await s.execute(stmt, todo[i : i + 2000])
    return len(missing)


async def _rolled(
    s: AsyncSession, f: Filters, days: list[str], metrics: list[str], *, summed: bool
) -> dict[str, Counter[str]]:
    """Stored figures by day. ``summed``: the (language, channel) rows of the filter added up;
    else the row of the filter's own level."""
    if not days:
        return {}
    q = select(DailyStat.day, DailyStat.metric, func.sum(DailyStat.value)).where(
        DailyStat.day >= days[0], DailyStat.day <= days[-1], DailyStat.metric.in_(metrics)
    )
    if summed:
        q = q.where(DailyStat.language != ALL, DailyStat.channel != ALL)
        if f.language:
            q = q.where(DailyStat.language == f.language)
        if f.channel:
            q = q.where(DailyStat.channel == f.channel)
    else:
        q = q.where(
            DailyStat.language == (f.language or ALL), DailyStat.channel == (f.channel or ALL)
        )
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for day, metric, n in await s.execute(q.group_by(DailyStat.day, DailyStat.metric)):
        out[str(day)][str(metric)] += int(n or 0)
    return out


def _open_part(f: Filters, closed: list[str]) -> Filters | None:
    """The days of the range after the closed ones (counted live), or None."""
    if len(closed) == len(f.days):
        return None
    start = f.start + timedelta(days=len(closed))
    return Filters(start, f.end, language=f.language, channel=f.channel)


async def stored(
    s: AsyncSession, f: Filters, metrics: list[str], *, summed: bool
) -> tuple[dict[str, Counter[str]], Filters | None]:
    """The stored ``metrics`` of the range's closed days by day (stored now where missing;
    ``summed`` as :func:`_rolled`), and the rest of the range, to count live (or None)."""
    closed = _closed_days(f, datetime.now(UTC))
    await ensure_rollups(s, closed)
    return await _rolled(s, f, closed, metrics, summed=summed), _open_part(f, closed)


async def prepare(s: AsyncSession, f: Filters) -> None:
    """Store the roll-ups of the range's closed days now (before charts read them in
    parallel, each on a connection of its own)."""
    await ensure_rollups(s, _closed_days(f, datetime.now(UTC)))
