"""The figures behind the staff dashboard (``/admin/dashboard``), one function a chart.

Every chart is a :class:`Chart`: a title, column names and rows of plain values, so the page
draws it, and ``/admin/stats/<chart>.csv`` / ``.json`` export exactly what is drawn. Days are
UTC calendar days; a range is ``start`` to ``end``, both days included.

What the charts count:

- ``conversations``: conversations with at least one message from the customer that day, and
  those messages.
- ``containment``: of those conversations, the ones no person was asked into (no handoff
  opened that day): answered by the assistant alone.
- ``outcomes``: the assistant's turns by outcome, from what the engine stores with each reply
  (``meta.policy`` and ``meta.fallback``): *answered*, *clarified* (topics offered to pick
  from), *fallback* (did not understand: default answer, out of scope, a person offered, a
  language not served, or an error), *handed off* (the handoff policy answered). A turn's
  replies share their conversation and time, so a turn counts once however many messages it
  sent.
- ``handoffs`` / ``handoff_times``: handoffs opened in the range by reason; minutes to the first
  staff answer and to resolution (median and 90th percentile, of those answered / resolved).
- ``csat``: the "was this helpful?" answers by day (stored on the answer they rate);
  ``handoff_csat``: the 1-5 ratings after a resolved handoff.
- ``funnel``: contacts by their current lifecycle stage; ``transitions``: stage moves a week
  (weeks start on Monday), by the stage moved to.
- ``prompts``: per prompt sent, skipped, exposed and converted per group, the lift of the
  treated group's conversion rate over the holdout's with its 95% interval (Newcombe, as
  ``concierge report prompts``); ``prompt_skips``: skips by reason.
- ``internal``: internal updates created in the range: people reached and engaged (a reaction
  or a button; Slack has no read receipts).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import math
import typing
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Date,
    Integer,
    String,
    Table,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import Clock
from bot.handoff.models import Handoff
from bot.lifecycle.config import DEFAULT_STAGES
from bot.lifecycle.models import StageTransition
from bot.prompts.experiments import HOLDOUT, difference_ci
from bot.prompts.models import PromptConversion, PromptSend, PromptSkip
from bot.storage.db import Database
from bot.storage.models import Base, Contact, Message

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_DAYS = 731  # the longest range a request may ask for (two years)

OUTCOMES = ("answered", "clarified", "fallback", "handed_off")


class FilterError(ValueError):
    """A filter a request gave cannot be used (the reason is for the person who asked)."""


@dataclass(frozen=True)
class Filters:
    start: date
    end: date  # included
    language: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise FilterError("'end' is before 'start'")
        if (self.end - self.start).days + 1 > MAX_DAYS:
            raise FilterError(f"a range of at most {MAX_DAYS} days")

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the range."""
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def days(self) -> list[str]:
        n = (self.end - self.start).days + 1
        return [(self.start + timedelta(days=i)).isoformat() for i in range(n)]

    @classmethod
    def last_days(cls, today: date, days: int = 30, **kw: Any) -> Filters:
        return cls(today - timedelta(days=days - 1), today, **kw)

    @classmethod
    def parse(cls, params: dict[str, str], today: date) -> Filters:
        """From query parameters ``start``, ``end`` (YYYY-MM-DD), ``language``, ``channel``;
        the last 30 days by default."""

        def day(name: str, default: date) -> date:
            raw = (params.get(name) or "").strip()
            if not raw:
                return default
            try:
                return date.fromisoformat(raw)
            except ValueError:
                raise FilterError(
                    f"'{name}' must be a date as YYYY-MM-DD, not {raw[:20]!r}"
                ) from None

        end = day("end", today)
        start = day("start", end - timedelta(days=29))

        def word(name: str) -> str | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            if len(raw) > 32 or not raw.replace("-", "").replace("_", "").isalnum():
                raise FilterError(f"'{name}' is not a {name} name: {raw[:32]!r}")
            return raw

        return cls(start, end, language=word("language"), channel=word("channel"))


@dataclass
class Chart:
    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    kind: str = "bar"  # line | bar | stacked | table
    note: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, filters: Filters | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "summary": self.summary,
        }
        if self.note:
            out["note"] = self.note
        if filters is not None:
            out["filters"] = {
                "start": filters.start.isoformat(),
                "end": filters.end.isoformat(),
                "language": filters.language,
                "channel": filters.channel,
            }
        return out

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for row in self.rows:
            w.writerow(["" if v is None else _csv_value(v) for v in row])
        return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if math.isfinite(v) else ""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not _number(v):
        return "'" + v  # a spreadsheet would run it as a formula
    return v


def _number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# --- helpers ------------------------------------------------------------------------------


def _day(s: AsyncSession, col: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, as the database computes it."""
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        return cast(func.timezone("UTC", col), Date)
    return func.date(col)


def _iso(d: Any) -> str:
    return d.isoformat() if isinstance(d, date) else str(d)[:10]


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (linear between the nearest ranks), ``None`` for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


def _in_range(col: Any, f: Filters) -> ColumnElement[bool]:
    return and_(col >= f.since, col < f.until)


def _message_filters(f: Filters) -> list[ColumnElement[bool]]:
    out = [_in_range(Message.created_at, f)]
    if f.language:
        out.append(Message.language == f.language)
    if f.channel:
        out.append(Message.channel == f.channel)
    return out


def _contact_subset(f: Filters) -> Any:
    """Contacts of the language filter (prompts have no language of their own)."""
    return select(Contact.id).where(Contact.language == f.language)


# --- daily roll-ups ---------------------------------------------------------------------------


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


async def _ensure_rollups(s: AsyncSession, days: list[str]) -> int:
    """Compute and store the figures of the days among ``days`` that have none yet; how many
    days that was. Several processes (and the lazy path next to :class:`RollupJob`) may do the
    same day at once: they compute the same rows, and the second insert does nothing."""
    if not days:
        return 0
    done = set(
        (
            await s.execute(
                select(DailyStat.day).where(
                    DailyStat.metric == DONE,
                    DailyStat.day >= days[0],
                    DailyStat.day <= days[-1],
                )
            )
        ).scalars()
    )
    missing = [d for d in days if d not in done]
    if not missing:
        return 0
    f = Filters(date.fromisoformat(missing[0]), date.fromisoformat(missing[-1]))
    rows: dict[tuple[str, str, str, str], int] = {}
    lang = func.coalesce(Message.language, NONE)
    chan = func.coalesce(Message.channel, NONE)
    d = _day(s, Message.created_at).label("d")
    for by_lang, by_chan in ((False, False), (True, False), (False, True), (True, True)):
        cols: list[Any] = [d]
        cols.append(lang.label("l") if by_lang else literal(ALL).label("l"))
        cols.append(chan.label("c") if by_chan else literal(ALL).label("c"))
        group: list[Any] = [d, *([lang] if by_lang else []), *([chan] if by_chan else [])]
        q = (
            select(*cols, func.count(distinct(Message.conversation_id)), func.count())
            .where(Message.direction == "in", _in_range(Message.created_at, f))
            .group_by(*group)
        )
        for r in await s.execute(q):
            where = (_iso(r[0]), str(r[1]), str(r[2]))
            rows[(*where, "conversations")] = int(r[3])
            rows[(*where, "customer_messages")] = int(r[4])
    turns = _turns(s, f, lang.label("l"), chan.label("c"))
    q2 = select(turns.c.d, turns.c.l, turns.c.c, turns.c.outcome, func.count()).group_by(
        turns.c.d, turns.c.l, turns.c.c, turns.c.outcome
    )
    for day, lg, ch, oc, n in await s.execute(q2):
        rows[(_iso(day), str(lg), str(ch), f"turns_{oc}")] = int(n)
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


ROLLUP_BATCH_DAYS = 14  # days a transaction of the roll-up job (SQLite: the write lock's hold)


async def build_rollups(db: Database, now: datetime, *, batch_days: int = ROLLUP_BATCH_DAYS) -> int:
    """Store the roll-ups of every day closed at ``now``, from the first message's day on, that
    has none yet, oldest first, ``batch_days`` days a transaction; how many days were built."""
    async with db.session() as s:
        firsts = [
            await s.scalar(select(func.min(Message.created_at)).where(Message.direction == way))
            for way in ("in", "out")  # each read from its partial index (0009_dashboard)
        ]
    known = [_utc(t) for t in firsts if t is not None]
    if not known:
        return 0
    first = min(known).date()
    cutoff = (now - CLOSED_AFTER).date()  # the first day not closed
    built = 0
    day = first
    while day < cutoff:
        last = min(day + timedelta(days=batch_days - 1), cutoff - timedelta(days=1))
        async with db.session() as s:
            built += await _ensure_rollups(s, Filters(day, last).days)
        day = last + timedelta(days=1)
    return built


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class RollupJob:
    """Builds the roll-ups ahead of the dashboard, as a job of ``runtime.jobs``: at start every
    closed day that misses them, then, each night, the day that just closed
    (:data:`CLOSED_AFTER` past UTC midnight). The dashboard's lazy path stays as the fallback
    (a day closed while the job waited, a failed round)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.built = 0  # days built since start
        self.rounds = 0  # rounds finished (the first: the start-up catch-up)
        self.ready = asyncio.Event()  # the start-up round is done (or failed)

    @staticmethod
    def next_round(now: datetime) -> datetime:
        """The night's round after ``now``: the next UTC midnight plus :data:`CLOSED_AFTER`."""
        return datetime.combine(now.date() + timedelta(days=1), time(), UTC) + CLOSED_AFTER

    async def round(self, now: datetime) -> int:
        try:
            n = await build_rollups(self.db, now)
        finally:
            self.rounds += 1
            self.ready.set()
        self.built += n
        if n:
            log.info("dashboard roll-ups: %d closed day(s) built", n)
        return n


def setup(runtime: Runtime) -> None:
    """The dashboard's feature: its roll-up job on the runtime's job runner."""
    job = RollupJob(runtime.db, runtime.clock)
    runtime.register(job)
    runtime.jobs.add("dashboard roll-ups", job.round, every=86400.0, at=job.next_round)


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


async def prepare(s: AsyncSession, f: Filters) -> None:
    """Store the roll-ups of the range's closed days now (before charts read them in
    parallel, each on a connection of its own)."""
    await _ensure_rollups(s, _closed_days(f, datetime.now(UTC)))


def _open_part(f: Filters, closed: list[str]) -> Filters | None:
    """The days of the range after the closed ones (counted live), or None."""
    if len(closed) == len(f.days):
        return None
    start = f.start + timedelta(days=len(closed))
    return Filters(start, f.end, language=f.language, channel=f.channel)


# --- conversations --------------------------------------------------------------------------


async def _conversations_by_day(s: AsyncSession, f: Filters) -> dict[str, tuple[int, int]]:
    key = ("conversations_by_day", f)
    if key in s.info:
        return s.info[key]  # type: ignore[no-any-return]
    closed = _closed_days(f, datetime.now(UTC))
    await _ensure_rollups(s, closed)
    stored = await _rolled(s, f, closed, ["conversations", "customer_messages"], summed=False)
    out = {d: (c["conversations"], c["customer_messages"]) for d, c in stored.items()}
    live = _open_part(f, closed)
    if live is not None:
        d = _day(s, Message.created_at).label("d")
        q = (
            select(d, func.count(distinct(Message.conversation_id)), func.count())
            .where(Message.direction == "in", *_message_filters(live))
            .group_by(d)
        )
        out.update({_iso(day): (int(c), int(m)) for day, c, m in await s.execute(q)})
    s.info[key] = out
    return out


EXACT_TOTAL_DAYS = 92  # longer ranges: the conversations of each day added up


async def conversations(s: AsyncSession, f: Filters) -> Chart:
    by_day = await _conversations_by_day(s, f)
    rows: list[list[Any]] = [[d, *by_day.get(d, (0, 0))] for d in f.days]
    if len(f.days) <= EXACT_TOTAL_DAYS:  # a conversation of several days counts once
        total = (
            await s.execute(
                select(func.count(distinct(Message.conversation_id))).where(
                    Message.direction == "in", *_message_filters(f)
                )
            )
        ).scalar_one()
    else:
        total = sum(r[1] for r in rows)
    return Chart(
        "conversations",
        "Conversations per day",
        ["day", "conversations", "customer_messages"],
        rows,
        kind="line",
        summary={"conversations": int(total), "customer_messages": sum(r[2] for r in rows)},
    )


async def containment(s: AsyncSession, f: Filters) -> Chart:
    by_day = await _conversations_by_day(s, f)
    d = _day(s, Handoff.created_at).label("d")
    hq = select(d, func.count(distinct(Handoff.conversation_id))).where(
        _in_range(Handoff.created_at, f)
    )
    if f.language:
        hq = hq.where(Handoff.language == f.language)
    if f.channel:
        hq = hq.where(Handoff.channel == f.channel)
    handed = {_iso(day): int(n) for day, n in await s.execute(hq.group_by(d))}
    rows: list[list[Any]] = []
    for day in f.days:
        conv = by_day.get(day, (0, 0))[0]
        h = min(handed.get(day, 0), conv) if conv else 0
        rows.append([day, conv, conv - h, h, _round(_ratio(conv - h, conv), 4)])
    conv_total = sum(r[1] for r in rows)
    contained = sum(r[2] for r in rows)
    return Chart(
        "containment",
        "Containment: conversations answered without a person",
        ["day", "conversations", "contained", "handed_off", "containment_rate"],
        rows,
        kind="stacked",
        note="A conversation counts once a day; contained: no handoff opened that day.",
        summary={
            "conversation_days": conv_total,
            "contained": contained,
            "containment_rate": _round(_ratio(contained, conv_total), 4),
        },
    )


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


def _turns(s: AsyncSession, f: Filters, *extra: Any) -> Any:
    """The assistant's turns of the range: one row a turn (its replies share conversation and
    time), with its day, its outcome and ``extra`` columns."""
    return (
        select(
            Message.conversation_id,
            Message.created_at,
            _day(s, Message.created_at).label("d"),
            _outcome_expr().label("outcome"),
            *extra,
        )
        .where(
            Message.direction == "out",
            Message.sender == "bot",
            Message.meta["policy"].as_string().is_not(None),
            *_message_filters(f),
        )
        .distinct()
        .subquery()
    )


async def outcomes(s: AsyncSession, f: Filters) -> Chart:
    closed = _closed_days(f, datetime.now(UTC))
    await _ensure_rollups(s, closed)
    stored = await _rolled(s, f, closed, [f"turns_{o}" for o in OUTCOMES], summed=True)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for day, c in stored.items():
        for o in OUTCOMES:
            counts[day][o] = c[f"turns_{o}"]
    live = _open_part(f, closed)
    if live is not None:
        turns = _turns(s, live)
        q = select(turns.c.d, turns.c.outcome, func.count()).group_by(turns.c.d, turns.c.outcome)
        for day, oc, n in await s.execute(q):
            counts[_iso(day)][str(oc)] += int(n)
    rows: list[list[Any]] = [[day, *(counts[day][o] for o in OUTCOMES)] for day in f.days]
    totals = {o: sum(int(r[i + 1]) for r in rows) for i, o in enumerate(OUTCOMES)}
    n = sum(totals.values())
    return Chart(
        "outcomes",
        "The assistant's turns: answered, clarified, fallback, handed off",
        ["day", *OUTCOMES],
        rows,
        kind="stacked",
        summary={
            **totals,
            "turns": n,
            **{f"{o}_share": _round(_ratio(totals[o], n), 4) for o in OUTCOMES},
        },
    )


# --- handoffs -----------------------------------------------------------------------------


def _handoff_filters(f: Filters) -> list[ColumnElement[bool]]:
    out = [_in_range(Handoff.created_at, f)]
    if f.language:
        out.append(Handoff.language == f.language)
    if f.channel:
        out.append(Handoff.channel == f.channel)
    return out


def _minutes(s: AsyncSession, later: Any, earlier: Any) -> ColumnElement[Any]:
    """Minutes from ``earlier`` to ``later`` as the database computes them (NULL if either is)."""
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 60.0
    return (func.julianday(later) - func.julianday(earlier)) * 1440.0


async def _handoff_rows(s: AsyncSession, f: Filters) -> list[Any]:
    """(reason, minutes to the first answer, minutes to resolution) of each handoff."""
    key = ("handoff_rows", f)
    if key not in s.info:
        q = select(
            Handoff.reason,
            _minutes(s, Handoff.first_response_at, Handoff.created_at),
            _minutes(s, Handoff.resolved_at, Handoff.created_at),
        ).where(*_handoff_filters(f))
        s.info[key] = list((await s.execute(q)).all())
    return s.info[key]  # type: ignore[no-any-return]


async def handoffs(s: AsyncSession, f: Filters) -> Chart:
    q = (
        select(
            Handoff.reason,
            func.count(),
            func.count(Handoff.first_response_at),
            func.count(Handoff.resolved_at),
        )
        .where(*_handoff_filters(f))
        .group_by(Handoff.reason)
    )
    got = [(str(r), int(n), int(a), int(d)) for r, n, a, d in await s.execute(q)]
    return Chart(
        "handoffs",
        "Handoffs by reason",
        ["reason", "handoffs"],
        [[r, n] for r, n, _, _ in sorted(got, key=lambda x: (-x[1], x[0]))],
        kind="bar",
        summary={
            "handoffs": sum(x[1] for x in got),
            "answered": sum(x[2] for x in got),
            "resolved": sum(x[3] for x in got),
        },
    )


async def handoff_times(s: AsyncSession, f: Filters) -> Chart:
    rows = await _handoff_rows(s, f)
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        groups[str(r[0])].append(r)
        groups["all"].append(r)
    out: list[list[Any]] = []
    for reason in sorted(groups, key=lambda k: (k == "all", k)):
        g = groups[reason]
        first = [max(0.0, float(r[1])) for r in g if r[1] is not None]
        done = [max(0.0, float(r[2])) for r in g if r[2] is not None]
        out.append(
            [
                reason,
                len(g),
                _round(_quantile(first, 0.5)),
                _round(_quantile(first, 0.9)),
                _round(_quantile(done, 0.5)),
                _round(_quantile(done, 0.9)),
            ]
        )
    return Chart(
        "handoff_times",
        "Handoffs: minutes to the first answer and to resolution",
        [
            "reason",
            "handoffs",
            "first_response_median_min",
            "first_response_p90_min",
            "resolution_median_min",
            "resolution_p90_min",
        ],
        out,
        kind="bar",
        note="Of the handoffs opened in the range that were answered / resolved.",
    )


# --- satisfaction -------------------------------------------------------------------------


async def csat(s: AsyncSession, f: Filters) -> Chart:
    d = _day(s, Message.created_at).label("d")
    q = (
        select(d, Message.feedback, func.count())
        .where(Message.feedback.is_not(None), *_message_filters(f))
        .group_by(d, Message.feedback)
    )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for day, fb, n in await s.execute(q):
        counts[_iso(day)][str(fb)] += int(n)
    rows: list[list[Any]] = []
    for day in f.days:
        yes, no = counts[day]["helpful"], counts[day]["not_helpful"]
        rows.append([day, yes, no, _round(_ratio(yes, yes + no), 4)])
    yes = sum(r[1] for r in rows)
    no = sum(r[2] for r in rows)
    return Chart(
        "csat",
        'CSAT: "Was this helpful?"',
        ["day", "helpful", "not_helpful", "helpful_share"],
        rows,
        kind="stacked",
        summary={
            "helpful": yes,
            "not_helpful": no,
            "helpful_share": _round(_ratio(yes, yes + no), 4),
        },
    )


async def handoff_csat(s: AsyncSession, f: Filters) -> Chart:
    q = select(Handoff.csat, func.count()).where(
        Handoff.csat.is_not(None), _in_range(Handoff.created_at, f)
    )
    if f.language:
        q = q.where(Handoff.language == f.language)
    if f.channel:
        q = q.where(Handoff.channel == f.channel)
    got = {int(k or 0): int(n) for k, n in await s.execute(q.group_by(Handoff.csat))}
    rows: list[list[Any]] = [[score, got.get(score, 0)] for score in range(1, 6)]
    n = sum(got.values())
    avg = sum(k * v for k, v in got.items()) / n if n else None
    return Chart(
        "handoff_csat",
        "Ratings after a handoff (1-5)",
        ["score", "ratings"],
        rows,
        kind="bar",
        summary={"ratings": n, "average": _round(avg, 2)},
    )


# --- lifecycle ----------------------------------------------------------------------------


async def funnel(s: AsyncSession, f: Filters, stages: Sequence[str] = DEFAULT_STAGES) -> Chart:
    q = select(Contact.lifecycle_stage, func.count()).group_by(Contact.lifecycle_stage)
    if f.language:
        q = q.where(Contact.language == f.language)
    if f.channel:
        q = q.where(Contact.preferred_channel == f.channel)
    got = {str(k): int(n) for k, n in await s.execute(q)}
    order = [*stages, *sorted(set(got) - set(stages))]
    return Chart(
        "funnel",
        "Lifecycle funnel: contacts by stage (now)",
        ["stage", "contacts"],
        [[st, got.get(st, 0)] for st in order],
        kind="bar",
        note="Today's stage of every contact; the date range does not apply.",
        summary={"contacts": sum(got.values())},
    )


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def transitions(s: AsyncSession, f: Filters, stages: Sequence[str] = DEFAULT_STAGES) -> Chart:
    d = _day(s, StageTransition.occurred_at).label("d")
    q = select(d, StageTransition.to_stage, func.count()).where(
        _in_range(StageTransition.occurred_at, f)
    )
    if f.language or f.channel:
        people = select(Contact.id)
        if f.language:
            people = people.where(Contact.language == f.language)
        if f.channel:
            people = people.where(Contact.preferred_channel == f.channel)
        q = q.where(StageTransition.contact_id.in_(people))
    weeks: dict[str, Counter[str]] = defaultdict(Counter)
    for day, to, n in await s.execute(q.group_by(d, StageTransition.to_stage)):
        weeks[_week(date.fromisoformat(_iso(day))).isoformat()][str(to)] += int(n)
    seen = {st for c in weeks.values() for st in c}
    cols = [st for st in stages if st in seen] + sorted(seen - set(stages))
    all_weeks = sorted({_week(date.fromisoformat(d)).isoformat() for d in f.days})
    return Chart(
        "transitions",
        "Lifecycle: stage moves a week, by new stage",
        ["week", *cols],
        [[w, *(weeks[w][c] for c in cols)] for w in all_weeks],
        kind="stacked",
        note="Weeks start on Monday.",
        summary={"transitions": sum(sum(c.values()) for c in weeks.values())},
    )


# --- prompts ------------------------------------------------------------------------------


async def _prompt_figures(
    s: AsyncSession, f: Filters
) -> tuple[dict[str, dict[str, Any]], dict[str, Counter[str]]]:
    key = ("prompt_figures", f)
    if key not in s.info:
        s.info[key] = await _prompt_figures_now(s, f)
    return s.info[key]  # type: ignore[no-any-return]


async def _prompt_figures_now(
    s: AsyncSession, f: Filters
) -> tuple[dict[str, dict[str, Any]], dict[str, Counter[str]]]:
    figs: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"sent": 0, "groups": defaultdict(lambda: [0, 0])}
    )
    skips: dict[str, Counter[str]] = defaultdict(Counter)
    q1 = select(PromptSend.prompt_id, PromptSend.variant, func.count()).where(
        _in_range(PromptSend.sent_at, f)
    )
    if f.channel:
        q1 = q1.where(PromptSend.channel == f.channel)
    if f.language:
        q1 = q1.where(PromptSend.contact_id.in_(_contact_subset(f)))
    for pid, variant, n in await s.execute(q1.group_by(PromptSend.prompt_id, PromptSend.variant)):
        figs[pid]["sent"] += n
        figs[pid]["groups"][variant or "a"][0] += n
    q2 = select(PromptSkip.prompt_id, PromptSkip.reason, func.count()).where(
        _in_range(PromptSkip.at, f)
    )
    if f.language:
        q2 = q2.where(PromptSkip.contact_id.in_(_contact_subset(f)))
    for pid, reason, n in await s.execute(q2.group_by(PromptSkip.prompt_id, PromptSkip.reason)):
        skips[pid][reason] += n
        _ = figs[pid]
        if reason == HOLDOUT:
            figs[pid]["groups"][HOLDOUT][0] += n
    q3 = select(PromptConversion.prompt_id, PromptConversion.variant, func.count()).where(
        _in_range(PromptConversion.exposed_at, f)
    )
    if f.language:
        q3 = q3.where(PromptConversion.contact_id.in_(_contact_subset(f)))
    for pid, variant, n in await s.execute(
        q3.group_by(PromptConversion.prompt_id, PromptConversion.variant)
    ):
        figs[pid]["groups"][variant][1] += n
    return figs, skips


async def prompts(s: AsyncSession, f: Filters) -> Chart:
    figs, skips = await _prompt_figures(s, f)
    rows: list[list[Any]] = []
    for pid in sorted(figs):
        g = figs[pid]["groups"]
        te = sum(v[0] for k, v in g.items() if k != HOLDOUT)
        tc = sum(v[1] for k, v in g.items() if k != HOLDOUT)
        he, hc = g[HOLDOUT] if HOLDOUT in g else (0, 0)
        t_rate, h_rate = _ratio(tc, te), _ratio(hc, he)
        lift = None if t_rate is None or h_rate is None else t_rate - h_rate
        ci = difference_ci(tc, te, hc, he)
        rows.append(
            [
                pid,
                figs[pid]["sent"],
                sum(n for r, n in skips[pid].items() if r != HOLDOUT),
                te,
                tc,
                _round(t_rate, 4),
                he,
                hc,
                _round(h_rate, 4),
                _round(lift, 4),
                _round(ci.low, 4) if ci else None,
                _round(ci.high, 4) if ci else None,
            ]
        )
    return Chart(
        "prompts",
        "Prompts: sent, skipped, converted; lift against the holdout (95% CI)",
        [
            "prompt",
            "sent",
            "skipped",
            "treated_exposed",
            "treated_converted",
            "treated_rate",
            "holdout_exposed",
            "holdout_converted",
            "holdout_rate",
            "lift",
            "lift_ci95_low",
            "lift_ci95_high",
        ],
        rows,
        kind="bar",
        note="Skipped leaves out the holdout (the control group, exposed but not sent).",
    )


async def prompt_skips(s: AsyncSession, f: Filters) -> Chart:
    _, skips = await _prompt_figures(s, f)
    rows = [
        [pid, reason, n]
        for pid in sorted(skips)
        for reason, n in sorted(skips[pid].items(), key=lambda x: (-x[1], x[0]))
    ]
    return Chart(
        "prompt_skips",
        "Prompts skipped, by reason",
        ["prompt", "reason", "skips"],
        rows,
        kind="bar",
    )


# --- internal updates ---------------------------------------------------------------------


async def internal(s: AsyncSession, f: Filters) -> Chart:
    """The figures of ``concierge internal report`` (bot.internal.reports.update_report), in
    three grouped statements for every update of the range."""
    from bot.internal.models import EngagementEvent, Update, UpdateDelivery

    updates = (
        await s.execute(
            select(Update.id, Update.key, Update.title)
            .where(_in_range(Update.created_at, f))
            .order_by(Update.created_at, Update.id)
            .limit(500)
        )
    ).all()
    ids = [u[0] for u in updates]
    planned: Counter[int] = Counter()
    reached: Counter[int] = Counter()
    engaged: Counter[int] = Counter()
    if ids:
        q = (
            select(UpdateDelivery.update_id, UpdateDelivery.status, func.count())
            .where(UpdateDelivery.update_id.in_(ids))
            .group_by(UpdateDelivery.update_id, UpdateDelivery.status)
        )
        for uid, status, n in await s.execute(q):
            planned[uid] += n
            if status in ("sent", "bundled"):  # directly, or in a digest
                reached[uid] += n
        people = (
            select(EngagementEvent.update_id, func.count(distinct(EngagementEvent.employee_id)))
            .where(
                EngagementEvent.update_id.in_(ids),
                EngagementEvent.employee_id.is_not(None),
                EngagementEvent.kind != "reaction_removed",
            )
            .group_by(EngagementEvent.update_id)
        )
        for uid, n in await s.execute(people):
            engaged[uid] += n
        anonymous = (
            select(EngagementEvent.update_id, func.count())
            .where(
                EngagementEvent.update_id.in_(ids),
                EngagementEvent.employee_id.is_(None),
                EngagementEvent.kind == "pulse_answer",
            )
            .group_by(EngagementEvent.update_id)
        )
        for uid, n in await s.execute(anonymous):
            engaged[uid] += n
    rows: list[list[Any]] = [
        [
            key,
            title,
            planned[uid],
            reached[uid],
            engaged[uid],
            _round(_ratio(engaged[uid], reached[uid]), 4),
        ]
        for uid, key, title in updates
    ]
    return Chart(
        "internal",
        "Internal updates: reach and engagement",
        ["update", "title", "planned", "reached", "engaged", "engagement_rate"],
        rows,
        kind="bar",
        note="Engaged: reacted or pressed a button (Slack has no read receipts). "
        "Language and channel filters do not apply.",
        summary={
            "updates": len(rows),
            "reached": sum(r[3] for r in rows),
            "engaged": sum(r[4] for r in rows),
        },
    )


ChartFn = Callable[[AsyncSession, Filters], Awaitable[Chart]]

CHARTS: dict[str, ChartFn] = {
    "conversations": conversations,
    "containment": containment,
    "outcomes": outcomes,
    "handoffs": handoffs,
    "handoff_times": handoff_times,
    "csat": csat,
    "handoff_csat": handoff_csat,
    "funnel": funnel,
    "transitions": transitions,
    "prompts": prompts,
    "prompt_skips": prompt_skips,
    "internal": internal,
}


__all__ = ["CHARTS", "Chart", "FilterError", "Filters", "RollupJob", "build_rollups", "prepare"]
