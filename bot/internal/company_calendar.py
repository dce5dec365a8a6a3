"""The company calendar: working days and hours, holidays, launches and events.

``updates/calendar.yml`` (or ``CONCIERGE_INTERNAL_CALENDAR_FILE``)::

    timezone: Europe/Berlin          # for channel posts and the calendar view
    working_hours: "09:00-17:00"     # each employee's local time
    working_days: [mon, tue, wed, thu, fri]
    dates:
      - {date: 2026-01-06, kind: holiday, title: Epiphany}
      - {from: 2026-12-24, to: 2026-12-31, kind: holiday, title: Winter break}
      - {date: 2026-02-10, kind: launch, title: Spring collection}
      - {date: 2026-03-05, kind: event, title: All hands}

Nothing is sent on a holiday, on a day off or outside working hours: it waits for the next
working moment of the recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.content.loader import ContentError, Doc
from bot.internal.config import WEEKDAYS, parse_hours
from bot.outreach.windows import parse_days

KINDS = ("holiday", "launch", "event")


@dataclass(frozen=True, slots=True)
class CompanyDate:
    start: date
    end: date
    kind: str
    title: str

    def covers(self, d: date) -> bool:
        return self.start <= d <= self.end


@dataclass
class CompanyCalendar:
    timezone: str = "UTC"
    working_days: frozenset[int] = frozenset(range(5))
    hours: tuple[time, time] = (time(9), time(17))
    dates: list[CompanyDate] = field(default_factory=list)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def holiday(self, d: date) -> CompanyDate | None:
        return next((c for c in self.dates if c.kind == "holiday" and c.covers(d)), None)

    def on(self, d: date) -> list[CompanyDate]:
        return [c for c in self.dates if c.covers(d)]

    def closed_reason(self, local: datetime) -> str | None:
        """Why nothing may be sent at this local moment (None: it may)."""
        h = self.holiday(local.date())
        if h is not None:
            return f"holiday ({h.title})"
        if local.weekday() not in self.working_days:
            return f"day off ({WEEKDAYS[local.weekday()]})"
        start, end = self.hours
        if not start <= local.time().replace(tzinfo=None) < end:
            return f"outside working hours ({start:%H:%M}-{end:%H:%M})"
        return None

    def next_open(self, local: datetime) -> datetime:
        """The first moment at or after ``local`` (aware, in its zone) when sending is allowed."""
        start, end = self.hours
        cursor = local
        for _ in range(800):
            d = cursor.date()
            if d.weekday() in self.working_days and self.holiday(d) is None:
                t = cursor.time().replace(tzinfo=None)
                if t < start:
                    return datetime.combine(d, start, tzinfo=local.tzinfo)
                if t < end:
                    return cursor
            cursor = datetime.combine(d + timedelta(days=1), time(0), tzinfo=local.tzinfo)
        raise ValueError("the calendar has no working time in the next two years")

    @classmethod
    def load(
        cls,
        path: Path | None,
        *,
        timezone: str,
        working_hours: str = "09:00-17:00",
        working_days: list[str] | None = None,
    ) -> CompanyCalendar:
        """The calendar file over the settings' defaults; errors name file and line."""
        days = working_days or ["mon", "tue", "wed", "thu", "fri"]
        cal = cls(
            timezone=timezone,
            working_days=frozenset(WEEKDAYS.index(d) for d in days),
            hours=parse_hours(working_hours),
        )
        if path is None or not path.exists():
            return cal
        doc = Doc.load(path)
        data = doc.data or {}
        if not isinstance(data, dict):
            raise ContentError(path, 1, "expected a mapping (timezone:, working_hours:, dates:)")

        def err(key: str, problem: str, line: int | None = None) -> ContentError:
            return ContentError(path, line or doc.key_line((key,)), problem)

        if "timezone" in data:
            try:
                ZoneInfo(str(data["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise err("timezone", f"unknown time zone {data['timezone']!r}") from None
            cal.timezone = str(data["timezone"])
        if "working_hours" in data:
            try:
                cal.hours = parse_hours(str(data["working_hours"]))
            except ValueError as e:
                raise err("working_hours", str(e)) from None
        if "working_days" in data:
            raw = data["working_days"]
            if isinstance(raw, str):
                raw = [p.strip() for p in raw.split(",")]
            try:
                cal.working_days = parse_days([str(d) for d in raw])
            except ValueError:
                raise err("working_days", f"working_days: use {', '.join(WEEKDAYS)}") from None
        items = data.get("dates") or []
        if not isinstance(items, list):
            raise err("dates", "dates: a list of {date: YYYY-MM-DD, kind: holiday, title: ...}")
        for i, item in enumerate(items):
            cal.dates.append(_date_item(path, doc.line(("dates", i)), item))
        cal.dates.sort(key=lambda c: c.start)
        return cal


def _date_item(path: Path, line: int | None, item: Any) -> CompanyDate:
    if not isinstance(item, dict):
        raise ContentError(path, line, "a date is {date: YYYY-MM-DD, kind: ..., title: ...}")
    kind = str(item.get("kind", "event")).lower()
    if kind not in KINDS:
        raise ContentError(path, line, f"kind {kind!r}: use {', '.join(KINDS)}")
    try:
        if "date" in item:
            start = end = _as_date(item["date"])
        else:
            start, end = _as_date(item["from"]), _as_date(item["to"])
    except (KeyError, ValueError):
        raise ContentError(
            path, line, "give date: YYYY-MM-DD, or from: and to: (YYYY-MM-DD)"
        ) from None
    if end < start:
        raise ContentError(path, line, f"'to' ({end}) is before 'from' ({start})")
    title = str(item.get("title") or kind)
    return CompanyDate(start, end, kind, title)


def _as_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v))
