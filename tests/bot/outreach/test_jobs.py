"""The periodic-job runner on a manual clock: jobs run when time moves, never on their own."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from bot.clock import ManualClock
from bot.outreach.jobs import Jobs


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_a_pass_runs_the_jobs_that_are_due_in_the_order_they_were_added(
    clock: ManualClock,
) -> None:
    jobs = Jobs(clock)
    seen: list[tuple[str, datetime]] = []

    async def sweep(now: datetime) -> str:
        seen.append(("sweep", now))
        return "swept"

    async def send(now: datetime) -> int:
        seen.append(("send", now))
        return 3

    jobs.add("sweep", sweep, every=300)
    jobs.add("send", send, every=15)
    t0 = clock.now()
    assert await jobs.run_due() == {"sweep": "swept", "send": 3}
    assert await jobs.run_due() == {}  # nothing is due again at the same time
    clock.advance(15)
    assert await jobs.run_due() == {"send": 3}
    clock.advance(285)
    assert list(await jobs.run_due()) == ["sweep", "send"]
    assert seen[0] == ("sweep", t0) and seen[-1] == ("send", t0 + timedelta(seconds=300))


async def test_first_after_delays_the_first_round(clock: ManualClock) -> None:
    jobs = Jobs(clock)
    jobs.add("sweep", lambda now: asyncio.sleep(0, "done"), every=3600, first_after=60)
    assert await jobs.run_due() == {}
    clock.advance(59)
    assert await jobs.run_due() == {}
    clock.advance(1)
    assert await jobs.run_due() == {"sweep": "done"}


async def test_a_failing_round_is_logged_and_the_job_runs_again(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs(clock)
    calls = 0

    async def flaky(now: datetime) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return calls

    async def other(now: datetime) -> str:
        return "fine"

    job = jobs.add("flaky", flaky, every=10)
    jobs.add("other", other, every=10)
    assert await jobs.run_due() == {"other": "fine"}  # the other job ran all the same
    assert job.failures == 1 and "job flaky failed" in caplog.text
    clock.advance(10)
    assert await jobs.run_due() == {"flaky": 2, "other": "fine"}


async def test_disabled_jobs_wait_and_settings_are_read_each_round(clock: ManualClock) -> None:
    jobs = Jobs(clock)
    settings = {"on": False, "every": 10.0}
    jobs.add(
        "job",
        lambda now: asyncio.sleep(0, "ran"),
        every=lambda: settings["every"],
        enabled=lambda: bool(settings["on"]),
    )
    assert await jobs.run_due() == {}
    settings["on"] = True
    clock.advance(10)
    assert await jobs.run_due() == {"job": "ran"}
    settings["every"] = 100.0  # from the next round on
    clock.advance(10)
    assert await jobs.run_due() == {"job": "ran"}
    clock.advance(90)
    assert await jobs.run_due() == {}
    clock.advance(10)
    assert await jobs.run_due() == {"job": "ran"}


async def test_a_job_added_again_replaces_the_first(clock: ManualClock) -> None:
    jobs = Jobs(clock)
    jobs.add("job", lambda now: asyncio.sleep(0, "first"), every=1)
    jobs.add("job", lambda now: asyncio.sleep(0, "second"), every=1)
    assert await jobs.run_due() == {"job": "second"}


async def test_the_loop_waits_for_the_clock_wakes_early_and_stops(clock: ManualClock) -> None:
    jobs = Jobs(clock)
    rounds: list[datetime] = []
    ran = asyncio.Event()

    async def job(now: datetime) -> None:
        rounds.append(now)
        ran.set()

    jobs.add("job", job, every=60)
    jobs.add("never", lambda now: asyncio.sleep(0), every=1e9)
    loop = asyncio.create_task(jobs.run())

    async def next_round() -> None:
        await asyncio.wait_for(ran.wait(), 5)
        ran.clear()

    await next_round()  # at once on start
    clock.advance(60)  # a minute later by the clock: the next round
    await next_round()
    jobs.wake("job")  # something is due now: no need to wait for the clock
    await next_round()
    assert len(rounds) == 3 and rounds[1] == rounds[2]
    jobs.wake("not a job")  # an unknown name wakes the loop, runs nothing
    jobs.stop()
    await asyncio.wait_for(loop, 5)
    assert jobs.stopped and len(rounds) == 3


async def test_a_stopped_runner_does_not_start(clock: ManualClock) -> None:
    jobs = Jobs(clock)
    jobs.add("job", lambda now: asyncio.sleep(0, "ran"), every=1)
    jobs.stop()
    await asyncio.wait_for(jobs.run(), 5)
    assert jobs.jobs["job"].runs == 0


async def test_the_runtime_owns_the_jobs_of_every_feature(rt: object) -> None:
    from bot.runtime import Runtime

    assert isinstance(rt, Runtime)
    assert {"lifecycle sweep", "flows due", "handoff SLA", "prompts", "prompt sweeps"} <= set(
        rt.jobs.jobs
    )
    assert rt.jobs.clock is rt.clock


async def test_a_calendar_job_runs_at_the_time_at_gives_after_each_run(clock: ManualClock) -> None:
    jobs = Jobs(clock)  # the clock starts on 2026-01-05 at 09:00 UTC
    ran: list[datetime] = []

    async def nightly(now: datetime) -> None:
        ran.append(now)

    def after_midnight(now: datetime) -> datetime:
        return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)

    jobs.add("nightly", nightly, every=60, at=after_midnight)
    await jobs.run_due()  # the first run: at start
    clock.advance(timedelta(hours=14, minutes=59))  # 23:59: `every` (60 s) is not what counts
    await jobs.run_due()
    assert len(ran) == 1
    clock.advance(60)  # midnight
    await jobs.run_due()
    assert [t.hour for t in ran] == [9, 0] and ran[1].day == 6
