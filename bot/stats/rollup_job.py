"""The roll-up job: builds the daily roll-ups (:mod:`bot.stats.rollups`) ahead of the
dashboard, as a calendar job of ``runtime.jobs``."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from bot.clock import Clock
from bot.stats.filters import Filters
from bot.stats.rollups import CLOSED_AFTER, ensure_rollups
from bot.storage.db import Database
from bot.storage.models import Message

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger("bot.stats")

ROLLUP_BATCH_DAYS = 14  # days a transaction of the roll-up job (SQLite: the write lock's hold)


async def build_rollups(db: Database, now: datetime, *, batch_days: int = ROLLUP_BATCH_DAYS) -> int:
    """Store the roll-ups of every day closed at ``now``, from the first message's day on, that
    has none yet, oldest first, ``batch_days`` days a transaction; how many days were built."""
    async with db.session() as s:
        firsts = [
            await s.scalar(select(func.min(Message.created_at)).where(Message.direction == way))
            for way in ("in", "out")  # each read from its partial index (0009_dashboard)
        ]
    known = [_utc(t) for t in firsts if t is not None]
    if not known:
        return 0
    first = min(known).date()
    cutoff = (now - CLOSED_AFTER).date()  # the first day not closed
    built = 0
    day = first
    while day < cutoff:
        last = min(day + timedelta(days=batch_days - 1), cutoff - timedelta(days=1))
        async with db.session() as s:
            built += await ensure_rollups(s, Filters(day, last).days)
        day = last + timedelta(days=1)
    return built


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class RollupJob:
    """Builds the roll-ups ahead of the dashboard, as a job of ``runtime.jobs``: at start every
    closed day that misses them, then, each night, the day that just closed
    (:data:`CLOSED_AFTER` past UTC midnight). The dashboard's lazy path stays as the fallback
    (a day closed while the job waited, a failed round)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.built = 0  # days built since start
        self.rounds = 0  # rounds finished (the first: the start-up catch-up)
        self.ready = asyncio.Event()  # the start-up round is done (or failed)

    @staticmethod
    def next_round(now: datetime) -> datetime:
        """The night's round after ``now``: the next UTC midnight plus :data:`CLOSED_AFTER`."""
        return datetime.combine(now.date() + timedelta(days=1), time(), UTC) + CLOSED_AFTER

    async def round(self, now: datetime) -> int:
        try:
            n = await build_rollups(self.db, now)
        finally:
            self.rounds += 1
            self.ready.set()
        self.built += n
        if n:
            log.info("dashboard roll-ups: %d closed day(s) built", n)
        return n


def setup(runtime: Runtime) -> None:
    """The dashboard's feature: its roll-up job on the runtime's job runner."""
    job = RollupJob(runtime.db, runtime.clock)
    runtime.register(job)
    runtime.jobs.add("dashboard roll-ups", job.round, every=86400.0, at=job.next_round)
