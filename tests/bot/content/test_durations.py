"""bot.content.durations: the one duration syntax of content files and settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.content.durations import duration_text, parse_duration


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("90m", timedelta(minutes=90)),
        ("90 min", timedelta(minutes=90)),
        ("36h", timedelta(hours=36)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        (" 2w ", timedelta(weeks=2)),
        ("0m", timedelta(0)),
        (3, timedelta(days=3)),  # a bare number is days
        (0.5, timedelta(hours=12)),
        (timedelta(hours=2), timedelta(hours=2)),
    ],
)
def test_every_form(raw: Any, expected: timedelta) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-3d", "cannot be negative"),
        (-1, "cannot be negative"),
        (timedelta(hours=-1), "cannot be negative"),
        ("tomorrow", "not a duration: 'tomorrow' (use e.g. 3d, 12h, 30m, 2w)"),
        ("3x", "not a duration"),
        ("", "not a duration"),
        (True, "not a duration"),
        (None, "not a duration"),
    ],
)
def test_bad_durations_say_why(raw: Any, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_duration(raw)
    assert message in str(e.value)


@pytest.mark.parametrize("text", ["45s", "90m", "36h", "3d", "2w"])
def test_text_round_trips(text: str) -> None:
    assert duration_text(parse_duration(text)) == text
