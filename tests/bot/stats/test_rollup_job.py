"""The dashboard's roll-up job (bot.stats.RollupJob), started with the runtime as ``concierge
run`` starts it, on SQLite and PostgreSQL, with a manual clock: at start it builds every closed
day that misses its roll-ups, after midnight the day that just closed; a dashboard request
after it writes no roll-ups."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from starlette.applications import Starlette

from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.settings import Settings
from bot.stats import DONE, DailyStat, RollupJob
from bot.storage.db import Database
from channels.app import create_app
from tests.auxil.dashboard_seed import DAY1, DAY2, seed


async def stored_days(db: Database) -> list[str]:
    async with db.session() as s:
        q = select(DailyStat.day).where(DailyStat.metric == DONE).order_by(DailyStat.day)
        return list((await s.execute(q)).scalars())


async def until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


@pytest.fixture
async def seeded(db_url: str) -> str:
    db = Database(db_url)
    await seed(db)
    await db.dispose()
    return db_url


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 3, 12, 0, tzinfo=UTC))  # DAY1 closed, DAY2 not


@pytest.fixture
async def product(
    seeded: str, clock: ManualClock, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[Runtime, Starlette]]:
    """The runtime and app as ``concierge run`` builds them (the app's routes, started)."""
    rt = Runtime(make_settings(seeded, admin_password="pw-123"), clock=clock, start_worker=False)
    app = create_app(runtime=rt)
    await rt.start(migrate=False)
    yield rt, app
    await rt.stop()


@pytest.fixture
def runtime(product: tuple[Runtime, Starlette]) -> Runtime:
    return product[0]


async def test_builds_the_closed_days_at_start_then_each_day_after_midnight(
    runtime: Runtime, clock: ManualClock
) -> None:
    job = runtime.service(RollupJob)
    await asyncio.wait_for(job.ready.wait(), 30)
    assert await stored_days(runtime.db) == [DAY1.isoformat()]  # DAY2 is today: counted live
    assert job.built == 1

    clock.set(datetime(2026, 3, 4, 0, 10, tzinfo=UTC))  # DAY2 closed ten minutes ago
    await until(lambda: job.rounds == 2)
    assert await stored_days(runtime.db) == [DAY1.isoformat(), DAY2.isoformat()]
    async with runtime.db.session() as s:
        q = select(DailyStat.day, DailyStat.value).where(
            DailyStat.metric == "customer_messages",
            DailyStat.language == "*",
            DailyStat.channel == "*",
        )
        assert sorted((await s.execute(q)).all()) == [("2026-03-02", 5), ("2026-03-03", 4)]

    clock.set(datetime(2026, 3, 5, 0, 10, tzinfo=UTC))  # an empty day closes: a marker only
    await until(lambda: job.rounds == 3)
    assert (await stored_days(runtime.db))[-1] == "2026-03-04" and job.built == 3


async def test_a_dashboard_request_after_the_job_writes_no_rollups(
    product: tuple[Runtime, Starlette], clock: ManualClock
) -> None:
    runtime, app = product
    job = runtime.service(RollupJob)
    clock.set(datetime(2026, 3, 4, 0, 10, tzinfo=UTC))
    await until(lambda: job.built == 2)  # in the start-up round or the night's
    writes: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if "stats_daily" in statement and not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", seen)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', (await c.get("/admin/login")).text)
        assert csrf
        r = await c.post("/admin/login", data={"name": "x", "password": "pw-123", "csrf": csrf[1]})
        assert r.status_code == 303
        r = await c.get("/admin/dashboard?start=2026-03-02&end=2026-03-03")
        assert r.status_code == 200 and '<span class="value">3</span>Conversations' in r.text
        r = await c.get("/admin/stats/outcomes.json?start=2026-03-02&end=2026-03-03")
        assert [row[1] for row in r.json()["rows"]] == [2, 3]  # answered, read from the roll-ups
    event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", seen)
    assert writes == []
