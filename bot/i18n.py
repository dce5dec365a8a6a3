"""Dates, weekdays and opening hours in a person's language, through Babel (CLDR data).

One place for the wording of time, so that every feature says "today at 09:00" the same way:
the words for today and tomorrow and the weekday names come from Babel; the sentence around
them is a response (``utter_when_day``, ``utter_when_weekday``, ``utter_when_date``) that a
shop may override in its ``responses.yml`` like any other text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time
from functools import lru_cache
from typing import TYPE_CHECKING

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

if TYPE_CHECKING:
    from bot.handoff.hours import WorkingHours

TextFn = Callable[..., str]
"""``text(name, **values)``: a response in the person's language (e.g. ``Turn.text``)."""

TIME_PATTERN = "HH:mm"  # 09:00 in every shop language (en's "9:00 AM" reads as American)


@lru_cache(maxsize=64)
def locale_of(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def clock(t: time | datetime, language: str) -> str:
    """``09:00``."""
    return format_time(t, TIME_PATTERN, locale=locale_of(language))


def weekday(d: date | int, language: str, width: str = "wide") -> str:
    """``Monday``, ``Montag``, ``hétfő``... (Babel's stand-alone form; ``d``: a date or 0-6)."""
    index = d if isinstance(d, int) else d.weekday()
    return str(locale_of(language).days["stand-alone"][width][index])


def day(d: date | str, language: str) -> str:
    """``Jan 5, 2026``, ``05.01.2026``... (CLDR's medium date; ``d`` may be ISO text)."""
    value = date.fromisoformat(d) if isinstance(d, str) else d
    return format_date(value, "medium", locale=locale_of(language))


def relative_day(offset: int, language: str) -> str | None:
    """CLDR's word for ``offset`` days from today: ``today``, ``tomorrow``, ``heute``..."""
    fields = locale_of(language)._data["date_fields"]["day"]["relative"]
    word = fields.get(offset)
    return str(word) if word else None


def relative_when(when: datetime, now: datetime, language: str, text: TextFn) -> str:
    """``today at 09:00``, ``tomorrow at 09:00``, ``on Monday at 09:00``, ``on 2 Jan at 09:00``,
    in ``when``'s own time zone (the shop's or the person's: the caller converts)."""
    local_now = now.astimezone(when.tzinfo) if when.tzinfo else now
    days = (when.date() - local_now.date()).days
    at = clock(when, language)
    if days in (0, 1):
        word = relative_day(days, language)
        if word:
            return text("utter_when_day", day=word, time=at)
    this_weekday = None
    if 0 <= days < 7:
        relative = locale_of(language)._data["date_fields"]
        key = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[when.weekday()]
        this_weekday = str(relative[key]["relative"].get(0) or "") or None
        return text(
            "utter_when_weekday",
            weekday=weekday(when.date(), language),
            this_weekday=this_weekday or weekday(when.date(), language),
            time=at,
        )
    return text(
        "utter_when_date",
        date=day(when.date(), language),
        time=at,
    )


def describe_hours(hours: WorkingHours, language: str, separator: str = ", ") -> str:
    """``Monday–Friday 08:00–18:00, Saturday 10:00–14:00`` in the language's words."""
    parts: list[str] = []
    for first, last, windows in _runs(hours.windows):
        days = weekday(first, language)
        if last != first:
            days += "–" + weekday(last, language)
        spans = ", ".join(f"{clock(s, language)}–{clock(e, language)}" for s, e in windows)
        parts.append(f"{days} {spans}")
    return separator.join(parts)


def _runs(
    windows: dict[int, list[tuple[time, time]]],
) -> Iterable[tuple[int, int, list[tuple[time, time]]]]:
    """Consecutive weekdays with the same windows, as (first, last, windows)."""
    run: tuple[int, int, list[tuple[time, time]]] | None = None
    for d in range(7):
        w = sorted(windows.get(d, []))
        if run is not None and w and run[2] == w and run[1] == d - 1:
            run = (run[0], d, w)
            continue
        if run is not None:
            yield run
        run = (d, d, w) if w else None
    if run is not None:
        yield run
