"""The one duration syntax of content files and settings: ``30s 90m 36h 7d 2w`` or a number
of days. Negative durations are rejected; a duration of zero is allowed (callers that need a
positive one check that themselves)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_HINT = "use e.g. 3d, 12h, 30m, 2w"


def parse_duration(value: Any) -> timedelta:
    """``"7d"``, ``"36h"``, ``"90m"``, ``"2w"``, ``"30s"`` or a number of days -> timedelta.

    Raises :class:`ValueError` with a hint (a negative duration names itself)."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"a duration cannot be negative: {value}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r} ({_HINT})")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return timedelta(days=value)
    text = str(value).strip()
    if text.startswith("-") and _DURATION.match(text[1:]):
        raise ValueError(f"a duration cannot be negative: {value!r}")
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {value!r} ({_HINT})")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def duration_text(d: timedelta) -> str:
    """The shortest exact form: ``2w``, ``36h``, ``90m``, ``45s``."""
    s = int(d.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"
