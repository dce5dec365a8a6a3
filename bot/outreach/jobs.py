"""The periodic-job runner: every proactive loop of the product in one place.

A feature adds a *job* (a coroutine that does one round at a given time) with its interval;
the runtime starts the runner with the rest of its background work and stops it first. Time
comes from the runtime's clock: with a :class:`~bot.clock.ManualClock` a job runs when the test
moves the time, never on its own. A job is woken early with :meth:`Jobs.wake` (a signal
scheduled something due); a round that raises is logged and the job runs again at its next
time. :meth:`Jobs.run_due` runs one pass by hand (tests, ``concierge`` commands).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock

log = logging.getLogger(__name__)

Round = Callable[[datetime], Awaitable[Any]]
Seconds = float | Callable[[], float]


def _seconds(value: Seconds) -> float:
    return float(value() if callable(value) else value)


@dataclass(eq=False)
class Job:
    """One periodic job; ``every`` and ``first_after`` may be read from settings each time."""

    name: str
    round: Round
    every: Seconds
    first_after: Seconds = 0.0
    enabled: Callable[[], bool] = lambda: True
    at: Callable[[datetime], datetime] | None = None  # calendar jobs: the next time after now
    next_at: datetime | None = None
    runs: int = 0
    failures: int = 0
    last: Any = None


class Jobs:
    """The runtime's periodic jobs (``runtime.jobs``)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self._wake = asyncio.Event()
        self._stopped = False

    def add(
        self,
        name: str,
        round: Round,
        every: Seconds,
        *,
        first_after: Seconds = 0.0,
        enabled: Callable[[], bool] | None = None,
        at: Callable[[datetime], datetime] | None = None,
    ) -> Job:
        """Run ``round(now)`` every ``every`` seconds (the first after ``first_after``); jobs
        due at the same time run in the order they were added. ``at`` makes it a calendar
        job: after each run at ``now`` it next runs at ``at(now)`` (e.g. the next midnight), with
        ``every`` unused. A feature set up again replaces its job of the same name."""
        job = Job(name, round, every, first_after, enabled or (lambda: True), at)
        self.jobs[name] = job
        return job

    def wake(self, name: str | None = None) -> None:
        """Run ``name`` (every job when None) at once instead of at its next time."""
        now = self.clock.now()
        for job in self.jobs.values():
            if name is None or job.name == name:
                job.next_at = now
        self._wake.set()

    def stop(self) -> None:
        """End :meth:`run` after the round in progress (and keep it from starting)."""
        self._stopped = True
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def run_due(self, now: datetime | None = None) -> dict[str, Any]:
        """One pass: every enabled job due at ``now`` runs once; returns what each returned."""
        now = now or self.clock.now()
        out: dict[str, Any] = {}
        for job in list(self.jobs.values()):
            if job.next_at is None:
                job.next_at = now + timedelta(seconds=_seconds(job.first_after))
            if job.next_at > now:
                continue
            if job.at is not None:
                job.next_at = max(job.at(now), now + timedelta(seconds=1))
            else:
                job.next_at = now + timedelta(seconds=_seconds(job.every))
            if not job.enabled():  # looked at again at its next time
                continue
            try:
                job.last = out[job.name] = await job.round(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                job.failures += 1
                log.exception("job %s failed (it runs again in %gs)", job.name, _seconds(job.every))
            job.runs += 1
        return out

    def _delay(self, now: datetime) -> float:
        due = [j.next_at for j in self.jobs.values() if j.next_at is not None]
        if not due:
            return 60.0
        return max(0.0, (min(due) - now).total_seconds())

    async def run(self) -> None:
        """Until :meth:`stop`: run what is due, then wait for the next job or a wake-up."""
        while not self._stopped:
            await self.run_due()
            if self._stopped:
                return
            delay = self._delay(self.clock.now())
            if delay <= 0:
                await asyncio.sleep(0)  # let the rest of the process run between passes
            else:
                sleep = asyncio.ensure_future(self.clock.sleep(delay))
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({sleep, woken}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleep.cancel()
                    woken.cancel()
                    await asyncio.gather(sleep, woken, return_exceptions=True)
            self._wake.clear()
