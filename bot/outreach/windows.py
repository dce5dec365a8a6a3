"""One grammar for time windows: support hours, quiet hours, working hours and days.

A window is a list of parts separated by ``;``; a part is optional days and a time span::

    mon-fri 09:00-17:00; sat 10:00-14:00     # the handoff's support hours
    21:00-08:00                              # quiet hours: every day, across midnight
    09:00-17:00                              # working hours (with working days: mon-fri)
    mon,wed,fri 08:30-12:00                  # a list of days
    sat-sun 00:00-24:00                      # whole days

- *days*: English weekday names, full or their first three letters, any case (``mon``,
  ``Monday``); a range ``mon-fri`` (it may wrap: ``fri-mon``) or a list ``mon,wed``. Without
  days a part holds every day (or the days given next to it, e.g. ``working_days``).
- *span*: ``H:MM-H:MM`` in 24-hour time; ``24:00`` ends at midnight; an end before the start
  runs on past midnight (``21:00-08:00``), where the grammar allows it.
- ``""``, ``off`` and ``none`` are no window at all where a setting allows that (quiet hours).

The day names come from Babel's English data; names shown to people come from
:func:`bot.i18n.weekday` in their language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale

Span = tuple[time, time]  # (start, end); end time.max: until midnight; end <= start: wraps
MIDNIGHT = time.max
OFF = ("", "off", "none")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_PART = re.compile(r"^(?:(?P<days>[A-Za-z][A-Za-z ,\-]*?)\s+)?(?P<span>\d[\d:\s\-]*)$")


@cache
def _names() -> dict[str, int]:
    """``mon``/``monday`` -> 0 ... ``sun``/``sunday`` -> 6, from Babel's English data."""
    days = Locale.parse("en").days["format"]
    out: dict[str, int] = {}
    for width in ("abbreviated", "wide"):
        for i, name in days[width].items():
            out[str(name).lower()] = int(i)
    return out


def day_key(index: int) -> str:
    """``0`` -> ``mon``: the short English key of a weekday (settings, logs, reasons)."""
    return str(Locale.parse("en").days["format"]["abbreviated"][index]).lower()


DAY_KEYS = tuple(day_key(i) for i in range(7))


def weekday_index(name: str) -> int:
    """``mon``, ``Monday``, ``MON`` -> 0; anything else is a ValueError naming the choices."""
    i = _names().get(name.strip().lower())
    if i is None:
        raise ValueError(f"unknown weekday {name!r}; use {', '.join(DAY_KEYS)}")
    return i


def parse_days(value: str | Iterable[str]) -> frozenset[int]:
    """``"mon-fri"``, ``"mon,wed"``, ``["mon", "tue"]``, ``"fri-mon"`` -> weekday numbers."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    out: set[int] = set()
    for part in (str(p).strip() for p in parts):
        if not part:
            continue
        first, sep, last = part.partition("-")
        a = weekday_index(first)
        b = weekday_index(last) if sep else a
        out.update((a + k) % 7 for k in range((b - a) % 7 + 1))
    return frozenset(out)


def parse_time(value: str, *, end: bool = False) -> time:
    m = _TIME.match(value.strip())
    if not m:
        raise ValueError(f"{value.strip()!r} is not a time: use HH:MM")
    h, mi = int(m.group(1)), int(m.group(2))
    if end and (h, mi) == (24, 0):
        return MIDNIGHT
    if h > 23 or mi > 59:
        raise ValueError(
            f"{value.strip()!r} is not a time of day (00:00-23:59, or 24:00 as an end)"
        )
    return time(h, mi)


def parse_span(value: str, *, wrap: bool = True) -> Span:
    """``"09:00-17:00"``; ``"21:00-08:00"`` across midnight (when ``wrap``); ``"x-24:00"``."""
    a, sep, b = value.partition("-")
    if not sep:
        raise ValueError(f"{value.strip()!r}: use HH:MM-HH:MM, e.g. 09:00-17:00")
    start, stop = parse_time(a), parse_time(b, end=True)
    if stop == start:
        raise ValueError(f"{value.strip()!r}: the start and the end are the same")
    if stop < start and not wrap:
        raise ValueError(f"{value.strip()!r}: the end must come after the start")
    return start, stop


@dataclass(frozen=True)
class Week:
    """Spans by weekday (0 = Monday), in local time."""

    days: tuple[tuple[Span, ...], ...]

    @classmethod
    def of(cls, spans: Iterable[tuple[int, Span]]) -> Week:
        by_day: list[list[Span]] = [[] for _ in range(7)]
        for d, span in spans:
            by_day[d].append(span)
        return cls(tuple(tuple(sorted(s)) for s in by_day))

    @property
    def windows(self) -> dict[int, list[Span]]:
        """The days that have spans: ``{0: [(09:00, 17:00)], ...}``."""
        return {d: list(s) for d, s in enumerate(self.days) if s}

    def on(self, days: Iterable[int]) -> Week:
        """The same spans, on ``days`` only."""
        keep = set(days)
        return Week(tuple(s if d in keep else () for d, s in enumerate(self.days)))

    def end_of(self, local: datetime) -> datetime | None:
        """The end of the span ``local`` falls in (same zone), or None outside every span."""
        t = local.timetz().replace(tzinfo=None)
        today, tz = local.date(), local.tzinfo
        yesterday = today - timedelta(days=1)
        for start, end in self.days[yesterday.weekday()]:  # a span that wrapped into today
            if end <= start and t < end:
                return datetime.combine(today, end, tzinfo=tz)
        for start, end in self.days[today.weekday()]:
            if end <= start and t >= start:
                return datetime.combine(today + timedelta(days=1), end, tzinfo=tz)
            if start <= t < end or (end == MIDNIGHT and start <= t):
                return _at(today, end, tz)
        return None

    def next_start(self, local: datetime, skip: Iterable[date] = ()) -> datetime | None:
        """``local`` when inside a span, else the next start (None: the week is empty);
        ``skip``: days that hold no span (holidays)."""
        closed = set(skip)
        if local.date() not in closed and self.end_of(local) is not None:
            return local
        for n in range(0, 8 + len(closed)):
            d = local.date() + timedelta(days=n)
            if d in closed:
                continue
            for start, _end in self.days[d.weekday()]:
                candidate = datetime.combine(d, start, tzinfo=local.tzinfo)
                if candidate > local:
                    return candidate
        return None


def _at(d: date, t: time, tz: tzinfo | None) -> datetime:
    if t == MIDNIGHT:
        return datetime.combine(d + timedelta(days=1), time(0), tzinfo=tz)
    return datetime.combine(d, t, tzinfo=tz)


def parse_week(
    spec: str,
    *,
    days: Iterable[int] = range(7),
    wrap: bool = True,
    need_days: bool = False,
    what: str = "hours",
) -> Week:
    """``"mon-fri 09:00-17:00; sat 10:00-14:00"`` -> :class:`Week`; a part without days holds
    ``days``. Errors name ``what`` and the part."""
    spans: list[tuple[int, Span]] = []
    example = "e.g. 'mon-fri 09:00-17:00'" if need_days else "e.g. '09:00-17:00'"
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        m = _PART.match(part)
        if not m or (need_days and not m.group("days")):
            raise ValueError(f"{what} {part!r}: use {example}")
        try:
            on = parse_days(m.group("days")) if m.group("days") else frozenset(days)
            span = parse_span(m.group("span"), wrap=wrap)
        except ValueError as e:
            raise ValueError(f"{what} {part!r}: {e}") from None
        spans += [(d, span) for d in sorted(on)]
    if not spans:
        raise ValueError(f"{what} {spec!r}: no hours given, {example}")
    return Week.of(spans)


def parse_optional_week(spec: str, *, what: str = "hours") -> Week | None:
    """:func:`parse_week` (every day, across midnight), where ``""``, ``off`` or ``none`` mean
    no window."""
    if spec.strip().lower() in OFF:
        return None
    return parse_week(spec, what=what)


@dataclass(frozen=True)
class OpenHours:
    """Messages go inside the week's spans, never on ``holidays`` (a :class:`~bot.outreach.
    reach.Window`)."""

    week: Week
    timezone: ZoneInfo
    holidays: frozenset[date] = frozenset()
    reason: str = "outside_hours"

    def closed(self, when: datetime) -> str | None:
        local = when.astimezone(self.timezone)
        if local.date() in self.holidays:
            return "holiday"
        return None if self.week.end_of(local) is not None else self.reason

    def next_open(self, when: datetime) -> datetime:
        local = when.astimezone(self.timezone)
        found = self.week.next_start(local, self.holidays)
        if found is None:
            raise ValueError("no hours are configured")
        return found


@dataclass(frozen=True)
class QuietHours:
    """Messages wait while the week's spans last, until they end (a :class:`~bot.outreach.
    reach.Window`)."""

    week: Week
    timezone: ZoneInfo
    reason: str = "quiet_hours"

    def closed(self, when: datetime) -> str | None:
        return self.reason if self.week.end_of(when.astimezone(self.timezone)) else None

    def next_open(self, when: datetime) -> datetime:
        end = self.week.end_of(when.astimezone(self.timezone))
        return when if end is None else end.astimezone(when.tzinfo)
