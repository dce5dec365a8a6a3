"""Time, injectable so that tests and simulations control it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to (tests, ``concierge simulate``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, delta: timedelta | float) -> datetime:
        self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Return once the test has moved the clock ``seconds`` on (never moves it itself, so
        background loops cannot run away with simulated time)."""
        target = self._now + timedelta(seconds=seconds)
        while self._now < target:  # noqa: ASYNC110 - set() may come from any loop or thread
            await asyncio.sleep(0.01)


def utcnow() -> datetime:
    return datetime.now(UTC)
