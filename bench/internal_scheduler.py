"""Internal updates: how long a scheduler round takes for a company of N employees.

    python bench/internal_scheduler.py [--employees 2000] [--updates 4] [--backends sqlite,postgres]

N employees in 20 departments and 6 time zones; U updates to everyone scheduled for 10:00 local
on consecutive days (the 4th of a week is held by the weekly cap); then the Friday digest.
Prints, per backend, the median time of the rounds that send (expand + decide + outbox rows)
and deliveries decided per second, and the digest round. One process, no Slack calls (the
outbox rows are the output). Rounds are what the server runs every 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from bot.clock import ManualClock  # noqa: E402
from bot.internal import configure  # noqa: E402
from bot.internal.employees import EmployeeRecord, upsert_employees  # noqa: E402
from bot.matcher import SimpleMatcher  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage.models import OutboxMessage  # noqa: E402
from channels.slack_internal import declare  # noqa: E402

PG_ADMIN = os.environ.get(
    "CONCIERGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ZONES = [
    "Europe/Berlin",
    "Europe/Budapest",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/London",
    "America/New_York",
]


class SetClock(ManualClock):
    """Moves only when set: other features' loops sleeping on the clock wait in real time."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def one(db_url: str, content: Path, employees: int, updates: int) -> dict[str, float]:
    os.environ["CONCIERGE_INTERNAL_SCHEDULER"] = "false"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        content_dir=content,
        secret_key="bench",
        default_timezone="Europe/Berlin",
    )
    clock = SetClock(datetime(2026, 1, 5, 0, 0, tzinfo=UTC))
    rt = Runtime(
        settings,
        clock=clock,
        nlu=SimpleMatcher.from_folder(REPO / "nlu_data"),
        start_worker=False,
    )
    await rt.start()
    svc = configure(rt, team_digest=False, scheduler=False)
    declare(svc)  # employees are on Slack, as the Slack adapter (or concierge internal) says
    async with rt.db.session() as s:
        await upsert_employees(
            s,
            [
                EmployeeRecord(
                    slack_user_id=f"U{i:07d}",
                    name=f"Person {i}",
                    department=f"Dept {i % 20}",
                    timezone=ZONES[i % len(ZONES)],
                )
                for i in range(employees)
            ],
            now=clock.now(),
        )
    for d in range(updates):
        (content / "updates" / f"u{d}.md").write_text(
            f"---\ntitle: Update {d}\naudience: everyone\nschedule: 2026-01-{5 + d:02d} 10:00\n"
            f"---\nNews number {d}.\n"
        )
    await svc.sync_files()
    rounds: list[float] = []
    decided = 0
    for d in range(updates):
        clock.set(datetime(2026, 1, 5 + d, 15, 30, tzinfo=UTC))  # 10:30 in New York
        t0 = time.perf_counter()
        st = await svc.run_once()
        rounds.append(time.perf_counter() - t0)
        decided += st.sent + st.held
    digest, digests = 0.0, 0
    for hour in (14, 15, 20):  # Friday 15:05 in central Europe, in London, in New York
        clock.set(datetime(2026, 1, 9, hour, 5, tzinfo=UTC))
        t0 = time.perf_counter()
        st = await svc.run_once()
        digest += time.perf_counter() - t0
        digests += st.digests
    async with rt.db.session() as s:
        queued = (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
    await rt.stop()
    return {
        "round_median_s": statistics.median(rounds),
        "decided_per_s": decided / sum(rounds),
        "digest_round_s": digest,
        "digests": digests,
        "outbox_rows": queued,
    }


async def pg_database() -> tuple[str, str]:
    import asyncpg

    name = f"concierge_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", name


async def drop_pg(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--employees", type=int, default=2000)
    ap.add_argument("--updates", type=int, default=4)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            content = Path(tmp) / "content"
            (content / "updates").mkdir(parents=True)
            (content / "flows").mkdir()  # one lifecycle stage: the demo shop's needs its texts
            (content / "flows" / "lifecycle.yml").write_text(
                "version: 1\ninitial: awareness\nstages:\n  awareness: {description: All}\n"
            )
            pg_name = None
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            else:
                url, pg_name = await pg_database()
            try:
                r = await one(url, content, args.employees, args.updates)
            finally:
                if pg_name:
                    await drop_pg(pg_name)
        print(
            f"{backend:<9} employees={args.employees} updates={args.updates}: "
            f"send round median {r['round_median_s']:.2f}s "
            f"({r['decided_per_s']:.0f} deliveries decided/s), "
            f"digest rounds {r['digest_round_s']:.2f}s for {r['digests']:.0f} digests, "
            f"outbox rows {r['outbox_rows']:.0f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
