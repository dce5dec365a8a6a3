"""What a dashboard request asks for: a range of UTC calendar days (both ends included), and
optionally one language and one channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

MAX_DAYS = 731  # the longest range a request may ask for (two years)


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
