"""Working hours and holidays of the staff team, in the team's time zone.

The hours use the one window grammar of :mod:`bot.outreach.windows`
(``"mon-fri 09:00-17:00; sat 10:00-14:00"``; docs/handoff.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from bot.outreach.windows import OpenHours, Week, parse_week


@dataclass(frozen=True)
class WorkingHours:
    """``"mon-fri 09:00-17:00; sat 10:00-14:00"`` in ``timezone``, closed on ``holidays``."""

    week: Week
    timezone: ZoneInfo
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, spec: str, timezone: str, holidays: list[date] | None = None) -> WorkingHours:
        week = parse_week(spec.lower(), wrap=False, need_days=True, what="working hours")
        return cls(week, ZoneInfo(timezone), frozenset(holidays or ()))

    @property
    def windows(self) -> dict[int, list[tuple[time, time]]]:
        return self.week.windows

    @property
    def window(self) -> OpenHours:
        """The hours as a window for :func:`~bot.outreach.reach.choose_reach`."""
        return OpenHours(self.week, self.timezone, self.holidays, "outside_working_hours")

    def is_open(self, when: datetime) -> bool:
        return self.window.closed(when) is None

    def next_open(self, when: datetime) -> datetime:
        """When a person is next available (``when`` itself if open)."""
        found = self.week.next_start(when.astimezone(self.timezone), self.holidays)
        if found is None:
            raise ValueError("no working hours are configured")
        return found
