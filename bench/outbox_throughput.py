"""Outbox throughput: the delivery worker and the real python-telegram-bot client against the fake
Telegram Bot API server (real HTTP on loopback; the fake runs in a process of its own, as the
platform would, and stamps each call on the machine's monotonic clock).

    python bench/outbox_throughput.py [--backends sqlite,postgres] [--backlog 3000]
                                      [--seconds 10] [--offered 20,200]

Per database backend it prints:
- drain: a backlog of rows to distinct chats, delivered with the rate limits off, then with
  Telegram's limits on (messages/s; with limits on, the most calls the fake saw in any one-second
  window, which must stay at or under 30);
- one chat: a burst to one chat with limits on (the most in any one-second window: about 1/s
  after a short burst);
- open loop: replies written at a fixed offered rate while the worker runs, latency p50/p99 from
  the row's commit (the engine's reply is durable) to the platform call, limits on and off.
The worker runs with the product's defaults (batch 50, 32 sends at once, woken on enqueue).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bot.clock import utcnow  # noqa: E402
from bot.engine.writer import Reply, write  # noqa: E402
from bot.outbox import DeliveryWorker  # noqa: E402
from bot.ratelimit import RateLimiter  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.types import Outbound  # noqa: E402
from channels.telegram import TelegramSender, limiter, make_bot  # noqa: E402

TOKEN = "123456:TEST"

PG_ADMIN = os.environ.get(
    "CONCIERGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_keys = itertools.count()


def pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def max_per_second(stamps: Sequence[float]) -> int:
    """The most calls in any window of one second (sliding)."""
    s = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(s):
        while s[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


@contextlib.asynccontextmanager
async def database(backend: str, tmp: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}")
        await db.upgrade()
        try:
            yield db
        finally:
            await db.dispose()
        return
    import asyncpg

    name = f"concierge_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    db = Database(f"{base}/{name}")
    try:
        await db.upgrade()
        yield db
    finally:
        await db.dispose()
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


class RemoteFake:
    """The fake Telegram server in a child process; its calls fetched over HTTP."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.telegram_api"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.token = TOKEN
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30)
        self._seen: list[dict[str, Any]] = []

    async def reset(self) -> None:
        await self.http.post("/_fake/reset")
        self._seen = []

    async def calls(self) -> list[dict[str, Any]]:
        r = await self.http.get("/_fake/calls", params={"since": len(self._seen)})
        self._seen.extend(r.json())
        return self._seen

    async def close(self) -> None:
        await self.http.aclose()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


async def enqueue(db: Database, rows: list[tuple[str, str]]) -> float:
    """Write rows ``(chat, text)`` in one transaction; returns the commit's monotonic time."""
    now = utcnow()
    async with db.session() as s:
        for chat, text in rows:
            await write(
                s,
                [
                    Reply(
                        channel="telegram",
                        address=chat,
                        message=Outbound(text=text),
                        idempotency_key=f"bench:{next(_keys)}",
                    )
                ],
                now=now,
            )
    return time.monotonic()


async def clear(db: Database) -> None:
    from sqlalchemy import delete

    from bot.storage.models import OutboxMessage

    async with db.session() as s:
        await s.execute(delete(OutboxMessage))


class Bench:
    def __init__(self, db: Database, fake: RemoteFake, settings: Settings) -> None:
        self.db, self.fake, self.settings = db, fake, settings

    @contextlib.asynccontextmanager
    async def worker(self, limits: RateLimiter | None) -> AsyncIterator[DeliveryWorker]:
        bot = make_bot(self.settings)
        await bot.initialize()
        s = self.settings
        w = DeliveryWorker(
            self.db,
            {"telegram": TelegramSender(bot)},
            limiters={"telegram": limits} if limits else {},
            max_attempts=s.delivery_max_attempts,
            backoff_base=s.delivery_backoff_base,
            backoff_max=s.delivery_backoff_max,
            batch_size=s.delivery_batch_size,
            lease_seconds=s.delivery_lease_seconds,
            poll_interval=s.delivery_poll_interval,
        )
        task = asyncio.create_task(w.run())
        try:
            yield w
        finally:
            w.stop()
            await asyncio.wait([task], timeout=30)
            await bot.shutdown()

    async def start(self) -> None:
        await clear(self.db)
        await self.fake.reset()

    async def wait_for(self, prefix: str, n: int, timeout: float) -> dict[str, float]:
        """Platform-side time of each message whose text starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            got = {
                str(c["params"]["text"]): float(c["at"])
                for c in await self.fake.calls()
                if c["method"] == "sendMessage"
                and c["ok"]
                and str(c["params"].get("text", "")).startswith(prefix)
            }
            if len(got) >= n or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.1)

    async def drain(self, n: int, limits: RateLimiter | None, tag: str) -> dict[str, Any]:
        await self.start()
        rows = [(str(100_000 + i), f"{tag}{i}") for i in range(n)]
        for i in range(0, n, 500):
            await enqueue(self.db, rows[i : i + 500])
        async with self.worker(limits):
            t0 = time.monotonic()
            got = await self.wait_for(tag, n, timeout=n / 5 + 60)
        stamps = sorted(got.values())
        took = stamps[-1] - t0 if stamps else float("nan")
        return {
            "sent": len(got),
            "per_s": len(got) / took if took else float("nan"),
            "max_in_1s": max_per_second(stamps),
        }

    async def one_chat(self, n: int, tag: str) -> dict[str, Any]:
        await self.start()
        await enqueue(self.db, [("555", f"{tag}{i}") for i in range(n)])
        async with self.worker(limiter()):
            got = await self.wait_for(tag, n, timeout=n * 2 + 30)
        stamps = sorted(got.values())
        return {"sent": len(got), "max_in_1s": max_per_second(stamps)}

    async def open_loop(
        self, rate: float, seconds: float, limits: RateLimiter | None, tag: str
    ) -> dict[str, Any]:
        await self.start()
        committed: dict[str, float] = {}
        n = int(rate * seconds)
        async with self.worker(limits) as w:
            t0 = time.monotonic()
            for i in range(n):
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                text = f"{tag}{i}"
                committed[text] = await enqueue(self.db, [(str(200_000 + i % 5000), text)])
                w.wake()  # as the engine does after its commit
            got = await self.wait_for(tag, n, timeout=60)
        lat = [(got[t] - committed[t]) * 1000 for t in got if t in committed]
        span = max(got.values()) - t0 if got else float("nan")
        return {
            "sent": len(got),
            "offered": rate,
            "per_s": len(got) / span if span else float("nan"),
            "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99),
            "max_in_1s": max_per_second(sorted(got.values())),
        }


async def run_backend(backend: str, args: argparse.Namespace, fake: RemoteFake, tmp: Path) -> None:
    async with database(backend, tmp) as db:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=db.url,
            telegram_token=fake.token,
            telegram_api_url=fake.url,
            secret_key="bench",
        )
        b = Bench(db, fake, settings)
        print(f"\n== {backend} ==")
        r = await b.drain(args.backlog, None, "off")
        print(
            f"drain {r['sent']} rows, limits off:  {r['per_s']:7.1f} msg/s "
            f"(max {r['max_in_1s']} in one second)"
        )
        n_on = max(60, int(30 * args.seconds))
        r = await b.drain(n_on, limiter(), "on")
        verdict = "under the limit" if r["max_in_1s"] <= 30 else "OVER THE LIMIT"
        print(
            f"drain {r['sent']} rows, limits on:   {r['per_s']:7.1f} msg/s "
            f"(max {r['max_in_1s']} in one second: {verdict} of 30/s)"
        )
        r = await b.one_chat(10, "chat")
        print(f"one chat, 10 rows, limits on:   max {r['max_in_1s']} in one second")
        for rate in args.offered:
            for limits_on in (False, True):
                if limits_on and rate > 30:
                    continue  # over the limit the queue only grows: latency is the backlog
                r = await b.open_loop(
                    rate, args.seconds, limiter() if limits_on else None, f"ol{rate}{limits_on}"
                )
                print(
                    f"open loop {rate:5.0f}/s offered, limits {'on ' if limits_on else 'off'}: "
                    f"{r['per_s']:6.1f} msg/s, latency p50 {r['p50_ms']:6.1f} ms, "
                    f"p99 {r['p99_ms']:6.1f} ms (max {r['max_in_1s']} in one second)"
                )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--backlog", type=int, default=3000, help="rows drained with limits off")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each timed run")
    ap.add_argument("--offered", default="20,200", help="open-loop rates, messages/s")
    args = ap.parse_args()
    args.offered = [float(x) for x in args.offered.split(",") if x]
    fake = RemoteFake()
    print(
        f"fake Telegram at {fake.url} (own process); worker batch "
        f"{Settings.model_fields['delivery_batch_size'].default}, {os.cpu_count()} CPUs"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in args.backends.split(","):
                await run_backend(backend.strip(), args, fake, Path(tmp))
    finally:
        await fake.close()


if __name__ == "__main__":
    asyncio.run(main())
