"""Working hours and holidays of the staff team, in the team's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPEC = re.compile(
    r"^\s*(\w{3})(?:\s*-\s*(\w{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$"
)


@dataclass(frozen=True)
class WorkingHours:
    """``"mon-fri 09:00-17:00; sat 10:00-14:00"`` in ``timezone``, closed on ``holidays``."""

    windows: dict[int, list[tuple[time, time]]]
    timezone: ZoneInfo
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, spec: str, timezone: str, holidays: list[date] | None = None) -> WorkingHours:
        windows: dict[int, list[tuple[time, time]]] = {}
        for part in filter(None, (p.strip() for p in spec.lower().split(";"))):
            m = _SPEC.match(part)
            if not m or m.group(1) not in DAYS or (m.group(2) and m.group(2) not in DAYS):
                raise ValueError(f"working hours {part!r}: use e.g. 'mon-fri 09:00-17:00'")
            first = DAYS.index(m.group(1))
            last = DAYS.index(m.group(2)) if m.group(2) else first
            start = time(int(m.group(3)), int(m.group(4)))
            end = time(int(m.group(5)), int(m.group(6)))
            if end <= start:
                raise ValueError(f"working hours {part!r}: the end must come after the start")
            for d in range(first, last + 1):
                windows.setdefault(d, []).append((start, end))
        return cls(windows, ZoneInfo(timezone), frozenset(holidays or ()))

    def is_open(self, when: datetime) -> bool:
        local = when.astimezone(self.timezone)
        if local.date() in self.holidays:
            return False
        return any(s <= local.time() < e for s, e in self.windows.get(local.weekday(), []))

    def next_open(self, when: datetime) -> datetime:
        """When a person is next available (``when`` itself if open now)."""
        if self.is_open(when):
            return when
        local = when.astimezone(self.timezone)
        for days in range(0, 370):
            d = (local + timedelta(days=days)).date()
            if d in self.holidays:
                continue
            for start, _end in sorted(self.windows.get(d.weekday(), [])):
                candidate = datetime.combine(d, start, tzinfo=self.timezone)
                if candidate > local:
                    return candidate
        raise ValueError("no working hours are configured")
