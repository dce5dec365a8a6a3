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
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from bot.content.loader import Doc
from bot.content.models import ContentModel, Text, TimeZoneName
from bot.internal.config import WEEKDAYS, parse_hours
from bot.outreach.windows import parse_days


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


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
        cal = cls(
            timezone=timezone,
            working_days=parse_days(working_days or ["mon", "tue", "wed", "thu", "fri"]),
            hours=parse_hours(working_hours),
        )
        if path is None or not path.exists():
            return cal
        f = Doc.load(path).validate(CalendarFile)
        cal.timezone = f.timezone or cal.timezone
        cal.hours = f.working_hours or cal.hours
        cal.working_days = cal.working_days if f.working_days is None else f.working_days
        cal.dates = sorted(
            (CompanyDate(d.start, d.end, d.kind, d.title or d.kind) for d in f.dates),
            key=lambda c: c.start,
        )
        return cal


class CalendarDate(ContentModel):
    """One day (``date:``) or a span (``from:``, ``to:``), with its kind and title."""

    model_config = ConfigDict(populate_by_name=True)

    day: date | None = Field(default=None, alias="date")
    start: date = Field(default=date.min, alias="from")
    end: date = Field(default=date.min, alias="to")
    kind: Annotated[Literal["holiday", "launch", "event"], BeforeValidator(_lower)] = "event"
    title: Text | None = None

    @model_validator(mode="after")
    def _one_day_or_a_span(self) -> CalendarDate:
        if self.day is not None:
            return self.model_copy(update={"start": self.day, "end": self.day})
        if date.min in (self.start, self.end):
            raise ValueError("give date: YYYY-MM-DD, or from: and to: (YYYY-MM-DD)")
        if self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start})")
        return self


class CalendarFile(ContentModel):
    """``updates/calendar.yml``: each key overrides the settings' default."""

    timezone: TimeZoneName | None = None
    working_hours: Annotated[tuple[time, time], BeforeValidator(parse_hours)] | None = None
    working_days: Annotated[frozenset[int], BeforeValidator(parse_days)] | None = None
    dates: list[CalendarDate] = Field(default_factory=list)
