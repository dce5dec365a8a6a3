"""Lifecycle benchmark (issue 6): event ingestion through the API, the inactivity sweep.

    python bench/lifecycle_bench.py ingest [--backends sqlite,postgres] [--batches 100]
                                           [--clients 4]
    python bench/lifecycle_bench.py sweep [--contacts 1000000]

``ingest``: the product runs as its own process (``concierge run``, demo content, every
feature on); ``--clients`` concurrent clients POST signed batches of 100 events to
``/api/v1/events`` (each batch: sign-ups, carts, purchases and deliveries of 25 new people, so
stages move, flows start and prompts get scheduled, as a shop's backfill would). Prints events/s
and the p50/p99 time of one batch per backend; then sends the first batch again and checks that
nothing new was stored (idempotent by event id).

``sweep``: a PostgreSQL database with N contacts generated in SQL (stages as a shop has them,
last activity spread over the past 400 days), then the inactivity rules of
``flows/lifecycle.yml`` applied by ``LifecycleService.sweep`` in a process of its own:
- the first sweep, which finds a backlog (about half the contacts are past a rule), measured
  with set-based statements only (``signals=False``: the prompts feature finds stage entries
  without a signal in its own set-based sweep) and with the product's receivers listening;
- a daily sweep the next day (only those who crossed a line overnight move).
Prints seconds, contacts moved, and the sweep process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.chat_throughput import create_pg_db, drop_pg_db, pct, start_server  # noqa: E402
from channels.web.events import HEADER, signature  # noqa: E402

SECRET = "bench-events-secret"
NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


# --- ingestion ------------------------------------------------------------------------------


def batch_of(n: int, size: int = 100) -> list[dict[str, Any]]:
    """``size`` events for ``size // 4`` new people: signed up, cart, purchased, delivered."""
    out: list[dict[str, Any]] = []
    base = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    steps = [
        ("signed_up", {}),
        ("added_to_cart", {"product": "grinder"}),
        ("purchased", {"order_id": "o", "amount": 249.0}),
        ("delivered", {"order_id": "o"}),
    ]
    for p in range(size // 4):
        user = f"bench-{n}-{p}"
        for k, (kind, props) in enumerate(steps):
            props = dict(props)
            if "order_id" in props:
                props["order_id"] = f"{user}-o1"
            out.append(
                {
                    "id": f"{user}-{kind}",
                    "type": kind,
                    "user_id": user,
                    "occurred_at": (base + timedelta(hours=k * 24 + p)).isoformat(),
                    "properties": props,
                }
            )
    return out


async def ingest_load(url: str, batches: int, clients: int) -> tuple[float, list[float], int]:
    lat: list[float] = []
    queue = list(range(batches))
    bodies = {n: json.dumps(batch_of(n)).encode() for n in queue}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:

        async def post(n: int) -> httpx.Response:
            body = bodies[n]
            return await client.post(
                "/api/v1/events",
                content=body,
                headers={"Content-Type": "application/json", HEADER: signature(SECRET, body)},
            )

        async def worker() -> None:
            while queue:
                n = queue.pop(0)
                t = time.perf_counter()
                r = await post(n)
                if r.status_code >= 300:
                    raise SystemExit(f"batch {n}: {r.status_code} {r.text[:300]}")
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
        again = await post(0)
        stored = again.json()
    return elapsed, lat, stored


def ingest(args: argparse.Namespace) -> None:
    print(
        f"Event ingestion: {args.batches} batches of 100 events, {args.clients} clients, "
        f"cpus={os.cpu_count()}"
    )
    print(f"{'backend':9} {'events/s':>9} {'batch p50 ms':>13} {'batch p99 ms':>13}  resend")
    os.environ["CONCIERGE_EVENTS_SECRET"] = SECRET
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            pg_name = None
            if backend == "sqlite":
                db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            else:
                db_url, pg_name = create_pg_db()
            proc, url = start_server(db_url, Path(tmp))
            try:
                elapsed, lat, again = asyncio.run(ingest_load(url, args.batches, args.clients))
                n = 100 * len(lat)
                print(
                    f"{backend:9} {n / elapsed:9.0f} {statistics.median(lat) * 1000:13.0f} "
                    f"{pct(lat, 99) * 1000:13.0f}  {summary(again)}"
                )
            finally:
                proc.terminate()
                proc.wait(20)
                if pg_name:
                    drop_pg_db(pg_name)


def summary(answer: Any) -> str:
    if isinstance(answer, dict):
        keep = {k: v for k, v in answer.items() if isinstance(v, int | str)}
        return json.dumps(keep)
    return str(answer)[:120]


# --- sweep ----------------------------------------------------------------------------------


async def populate(url: str, n: int) -> float:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    # stages as a shop has them; last activity spread evenly over the past 400 days
    stages = (
        "ARRAY['awareness','consideration','consideration','purchase','onboarding',"
        "'retention','retention','retention','advocacy','at-risk','churned','reactivated']"
    )
    now = f"'{NOW.isoformat()}'::timestamptz"
    conn = await asyncpg.connect(dsn)
    t = time.perf_counter()
    try:
        await conn.execute(
            f"""INSERT INTO contacts (id, public_id, user_id, display_name, language, timezone,
                  lifecycle_stage, stage_entered_at, marketing_opt_out, attributes,
                  purchase_count, monetary_total, last_activity_at, created_at, updated_at)
                SELECT i, md5(i::text), 'u' || i, 'Person ' || i, 'en', 'Europe/Berlin',
                  ({stages})[1 + i % 12], {now} - interval '400 days', false, '{{}}'::jsonb,
                  i % 4, 0, {now} - (i % 400) * interval '1 day' - interval '1 hour',
                  {now} - interval '400 days', {now}
                FROM generate_series(1, {n}) i"""
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('contacts', 'id'), (SELECT max(id) FROM contacts))"
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - t


async def sweep_once(url: str, when: str, signals: bool) -> dict[str, Any]:
    os.environ["CONCIERGE_PROMPTS_SCHEDULER"] = "false"
    os.environ["CONCIERGE_INTERNAL_ENABLED"] = "false"
    from bot.clock import ManualClock
    from bot.features import setup_features
    from bot.lifecycle.service import service_of
    from bot.matcher import SimpleMatcher
    from bot.runtime import Runtime
    from bot.settings import Settings

    at = datetime.fromisoformat(when)
    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        secret_key="bench",
        content_dir=REPO,
    )
    nlu = SimpleMatcher.from_folder(REPO / "nlu_data", threshold=0.3)
    rt = Runtime(s, clock=ManualClock(at), nlu=nlu, start_worker=False)
    add_channels(rt)
    setup_features(rt)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        t = time.perf_counter()
        moved = await service_of(rt).sweep(at, signals=signals)
        took = time.perf_counter() - t
    finally:
        await rt.db.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": took,
        "moved": moved,
        "rss_before_mb": before / 1024,
        "rss_peak_mb": peak / 1024,
    }


def run_child(url: str, when: datetime, signals: bool) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "_sweep", url, when.isoformat(), "1" if signals else "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"sweep process failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def reset(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("TRUNCATE contacts, stage_transitions, prompt_actions CASCADE")
    finally:
        await conn.close()


def show(label: str, r: dict[str, Any], n: int) -> None:
    moved = {k: v for k, v in r["moved"].items() if v}
    total = sum(v for k, v in moved.items() if k != "flows expired")
    print(
        f"  {label}: {r['seconds']:.1f} s, {total:,} of {n:,} contacts moved "
        f"({total / r['seconds']:,.0f}/s); peak RSS {r['rss_peak_mb']:.0f} MB "
        f"({r['rss_before_mb']:.0f} MB before the sweep)"
    )
    for k, v in moved.items():
        print(f"      {k}: {v:,}")


def sweep(args: argparse.Namespace) -> None:
    n = args.contacts
    print(f"Inactivity sweep on PostgreSQL, {n:,} contacts (rules of flows/lifecycle.yml)")
    url, name = create_pg_db()
    try:
        from bot.storage.db import Database

        async def upgrade() -> None:
            db = Database(url)
            await db.upgrade()
            await db.dispose()

        asyncio.run(upgrade())
        took = asyncio.run(populate(url, n))
        print(f"  data generated in {took:.0f} s")
        if not args.signals_only:
            first = run_child(url, NOW, signals=False)
            show("first sweep, set-based (signals off)", first, n)
            daily = run_child(url, NOW + timedelta(days=1), signals=False)
            show("next day's sweep, set-based", daily, n)
        if not args.skip_signals:
            if not args.signals_only:
                asyncio.run(reset(url))
                asyncio.run(populate(url, n))
            full = run_child(url, NOW, signals=True)
            show("first sweep, product's receivers listening (prompts)", full, n)
            daily = run_child(url, NOW + timedelta(days=1), signals=True)
            show("next day's sweep, receivers listening", daily, n)
    finally:
        drop_pg_db(name)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_sweep":
        url, when, signals = sys.argv[2:5]
        print(json.dumps(asyncio.run(sweep_once(url, when, signals == "1"))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("ingest")
    a.add_argument("--backends", default="sqlite,postgres")
    a.add_argument("--batches", type=int, default=100)
    a.add_argument("--clients", type=int, default=4)
    b = sub.add_parser("sweep")
    b.add_argument("--contacts", type=int, default=1_000_000)
    b.add_argument("--skip-signals", action="store_true")
    b.add_argument("--signals-only", action="store_true", help="only the runs with receivers")
    args = ap.parse_args()
    if args.what == "ingest":
        ingest(args)
    else:
        sweep(args)


class _Channel:
    """A product channel's sender as ``channels.app`` adds it (its declared capabilities);
    nothing is delivered in this benchmark (no delivery worker)."""

    def __init__(self, channel: str, capabilities: Any) -> None:
        self.channel = channel
        self.capabilities = capabilities

    async def send(self, delivery: Any) -> Any:
        raise RuntimeError("the benchmark delivers nothing")


def add_channels(rt: Any) -> None:
    """Web, Telegram and Slack can write first: prompts and flows reach people on them."""
    from channels import slack, telegram
    from channels.web import chat

    for channel in (chat, telegram, slack):
        rt.add_sender(_Channel(channel.CHANNEL, channel.CAPABILITIES))


if __name__ == "__main__":
    main()
