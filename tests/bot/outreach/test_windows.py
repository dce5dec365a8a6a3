"""The one window grammar: every accepted form, and errors that say what is wrong."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.outreach.windows import (
    DAY_KEYS,
    MIDNIGHT,
    parse_days,
    parse_optional_week,
    parse_span,
    parse_week,
    weekday_index,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=BERLIN)  # 5 Jan 2026 is a Monday


def test_day_names_come_from_babel_in_every_accepted_form() -> None:
    assert DAY_KEYS == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    assert weekday_index("Monday") == weekday_index("MON") == weekday_index(" mon ") == 0
    with pytest.raises(ValueError, match="unknown weekday 'mo'; use mon, tue"):
        weekday_index("mo")


@pytest.mark.parametrize(
    ("spec", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon - wed", {0, 1, 2}),
        ("fri-mon", {4, 5, 6, 0}),
        ("mon,wed, fri", {0, 2, 4}),
        ("sunday", {6}),
    ],
)
def test_days(spec: str, days: set[int]) -> None:
    assert parse_days(spec) == days


def test_days_as_a_list() -> None:
    assert parse_days(["mon", "Tuesday"]) == {0, 1}


def test_the_handoffs_hours_with_days_per_part() -> None:
    week = parse_week("mon-fri 09:00-17:00; sat 10:00-14:00", need_days=True)
    assert week.windows[0] == [(time(9), time(17))]
    assert week.windows[5] == [(time(10), time(14))]
    assert 6 not in week.windows
    assert week.end_of(at(5, 16, 59)) == at(5, 17)
    assert week.end_of(at(5, 17)) is None
    assert week.next_start(at(9, 18)) == at(10, 10)  # Friday evening: Saturday 10:00
    assert week.next_start(at(10, 15)) == at(12, 9)  # Saturday afternoon: Monday 09:00


def test_quiet_hours_across_midnight_every_day() -> None:
    week = parse_week("21:00-08:00")
    assert week.end_of(at(5, 22)) == at(6, 8)
    assert week.end_of(at(6, 7, 59)) == at(6, 8)
    assert week.end_of(at(6, 8)) is None


def test_a_whole_day_and_working_days_given_apart() -> None:
    week = parse_week("00:00-24:00", days=parse_days("sat-sun"))
    assert week.end_of(at(10, 23, 30)) == at(11, 0)
    assert week.end_of(at(9, 12)) is None
    office = parse_week("09:00-17:00").on(parse_days("mon-fri"))
    assert office.end_of(at(10, 12)) is None and office.end_of(at(9, 12)) == at(9, 17)


def test_off_means_no_window() -> None:
    for spec in ("", "off", " None "):
        assert parse_optional_week(spec) is None
    assert parse_optional_week("21:00-08:00") is not None


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("9-17", {}, "'9' is not a time: use HH:MM"),
        ("09:00", {}, "use HH:MM-HH:MM"),
        ("25:00-26:00", {}, "is not a time of day"),
        ("09:00-09:00", {}, "the start and the end are the same"),
        ("17:00-09:00", {"wrap": False}, "the end must come after the start"),
        ("09:00-17:00", {"need_days": True}, "e.g. 'mon-fri 09:00-17:00'"),
        ("mox 09:00-17:00", {}, "unknown weekday 'mox'"),
        (";", {}, "no hours given"),
    ],
)
def test_bad_windows_say_what_is_wrong(spec: str, kwargs: dict[str, bool], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_week(spec, **kwargs)  # type: ignore[arg-type]


def test_a_span_may_end_at_midnight() -> None:
    assert parse_span("18:00-24:00") == (time(18), MIDNIGHT)
