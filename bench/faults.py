"""Faults against ``concierge run``: what arrives, what is lost, what is doubled, how fast.

The product runs as deployed (``python -m channels.cli run`` in a process of its own, Telegram and
Slack configured against the fake platform servers of ``tests/fakes``, which run in this
process and record every call). For each database (SQLite file; PostgreSQL on 127.0.0.1:5432,
a throw-away database) and each fault, messages are written to the outbox as replies and
prompts are, the fault is played, and once the outbox has settled the fakes' records give:

- expected, lost (never taken in by the platform), doubled (taken in more than once);
- the most sends in any one second overall and to one chat / channel.

Faults: 429 bursts, 500s, connection resets, hangs (the request is taken and never answered
nor carried out), slow answers (within the send timeout), a late answer (after it: the one
case where a double is expected), SIGTERM (a deploy), kill -9 twice, and a database outage:
on PostgreSQL the database refuses connections and its backends are terminated
(``ALTER DATABASE ... ALLOW_CONNECTIONS false`` + ``pg_terminate_backend``, as a restart looks
to a client), on SQLite another process holds the write lock (a backup, a shell).

Targets: 0 lost always; 0 doubled but for kill -9 (at most 1 per kill and channel) and the late
answer; Telegram <= 30/s overall and one chat <= 4 in any second (a burst of 3, then 1/s);
Slack one channel <= 4 in any second.

    .venv/bin/python bench/faults.py [--only sqlite|postgres] [--faults 429,kill9,...]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.clock import utcnow  # noqa: E402
from bot.engine.writer import Reply, write  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.types import Outbound  # noqa: E402
from tests.auxil.process import ConciergeProcess  # noqa: E402
from tests.fakes.base import FakeServer  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

PG_ADMIN = os.environ.get(
    "CONCIERGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SEND_TIMEOUT = 2.0
LEASE = 6.0
# per platform: single messages to this many chats, and this many chats with a run each
SINGLES, RUNS, RUN_LENGTH = 60, 4, 6
FAULTS = ["none", "429", "500", "reset", "hang", "slow", "late", "sigterm", "kill9", "db"]
_keys = itertools.count()


@dataclass
class Platform:
    name: str
    fake: FakeServer
    method: str
    param: str


@dataclass
class Figures:
    expected: int = 0
    lost: int = 0
    doubled: int = 0
    overall: int = 0
    per_chat: int = 0
    seconds: float = 0.0


def most_in_a_second(stamps: list[float]) -> int:
    s = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(s):
        while s[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def messages(tag: str) -> list[tuple[str, str]]:
    out = [(f"{tag}{i}", f"{tag} single {i}") for i in range(SINGLES)]
    for c in range(RUNS):
        out += [(f"{tag}run{c}", f"{tag} run {c} part {k}") for k in range(RUN_LENGTH)]
    return out


async def enqueue(url: str, channel: str, items: list[tuple[str, str]]) -> None:
    db = Database(url)
    try:
        async with db.session() as s:
            for address, text in items:
                await write(
                    s,
                    [
                        Reply(
                            channel=channel,
                            address=address,
                            message=Outbound(text=text),
                            idempotency_key=f"bench{next(_keys)}",
                        )
                    ],
                    now=utcnow(),
                )
    finally:
        await db.dispose()


async def open_rows(url: str) -> int:
    from sqlalchemy import func, select

    from bot.storage.models import OutboxMessage

    db = Database(url)
    try:
        async with db.session() as s:
            n = await s.execute(
                select(func.count()).where(OutboxMessage.status.in_(["pending", "sending"]))
            )
            return int(n.scalar_one())
    finally:
        await db.dispose()


class PgDatabase:
    """A throw-away database on the shared cluster."""

    def __init__(self) -> None:
        self.name = f"concierge_faults_{uuid.uuid4().hex[:8]}"
        base = PG_ADMIN.rsplit("/", 1)[0]
        self.url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{self.name}"

    async def _admin(self, *sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        try:
            for q in sql:
                await conn.execute(q)
        finally:
            await conn.close()

    def create(self) -> None:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    def outage(self, seconds: float) -> None:
        """Connections refused and the open ones cut, for ``seconds`` (a restart, seen from
        the client)."""
        asyncio.run(
            self._admin(
                f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false',
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()",
            )
        )
        time.sleep(seconds)
        asyncio.run(self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))


def sqlite_lock(path: Path, seconds: float) -> None:
    """Another process's write transaction holds the SQLite file for ``seconds``."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def delivered(p: Platform, since: int) -> list[Any]:
    return [c for c in p.fake.calls[since:] if c.method == p.method and c.ok]


def run_case(
    fault: str,
    backend: str,
    platforms: list[Platform],
    model_dir: Path,
    workdir: Path,
) -> dict[str, Figures]:
    pg = PgDatabase() if backend == "postgres" else None
    sqlite_path = workdir / f"{fault}.db"
    if pg is not None:
        pg.create()
        url = pg.url
    else:
        url = f"sqlite+aiosqlite:///{sqlite_path}"
    asyncio.run(Database(url).upgrade())
    tg, sl = platforms
    env = {
        "CONCIERGE_DATABASE_URL": url,
        "CONCIERGE_CONTENT_DIR": str(REPO),
        "CONCIERGE_MODEL_DIR": str(model_dir),
        "CONCIERGE_SECRET_KEY": "bench-secret",
        "CONCIERGE_LOG_LEVEL": "WARNING",
        "CONCIERGE_TELEGRAM_TOKEN": "123456:TEST",
        "CONCIERGE_TELEGRAM_API_URL": tg.fake.url,
        "CONCIERGE_SLACK_BOT_TOKEN": "xoxb-bench",
        "CONCIERGE_SLACK_SIGNING_SECRET": "bench-signing",
        "CONCIERGE_SLACK_API_URL": f"{sl.fake.url}/api/",
        "CONCIERGE_DELIVERY_SEND_TIMEOUT": str(SEND_TIMEOUT),
        "CONCIERGE_DELIVERY_LEASE_SECONDS": str(LEASE),
        "CONCIERGE_DELIVERY_POLL_INTERVAL": "0.1",
        "CONCIERGE_DELIVERY_BACKOFF_BASE": "0.2",
        "CONCIERGE_DELIVERY_BACKOFF_MAX": "2",
        "CONCIERGE_DELIVERY_MAX_ATTEMPTS": "50",
    }
    log = workdir / f"{backend}-{fault}.log"
    proc = ConciergeProcess(env, log).start()
    marks = {p.name: len(p.fake.calls) for p in platforms}
    expected: dict[str, list[tuple[str, str]]] = {}
    for p in platforms:
        p.fake.clear_scenarios()
        p.fake.delay = 0.0
        if fault == "429":  # a burst of five refusals, each "retry after 1 s"
            p.fake.play("429", p.method, times=5, retry_after=1)
        elif fault == "500":
            p.fake.play("500", p.method, times=8)
        elif fault == "reset":
            p.fake.play("reset", p.method, times=8)
        elif fault == "hang":
            p.fake.play("hang", p.method, times=2, delay=SEND_TIMEOUT * 3)
        elif fault == "slow":
            p.fake.play("slow", p.method, times=8, delay=SEND_TIMEOUT / 2)
        elif fault == "late":  # taken in, answered after the client gave up
            p.fake.play("slow", p.method, times=1, delay=SEND_TIMEOUT + 1)
        elif fault in ("sigterm", "kill9"):
            p.fake.delay = 0.02  # a send takes a moment: the stop finds one on the wire
        expected[p.name] = messages(p.name[:2])
    started = time.monotonic()
    for p in platforms:
        asyncio.run(enqueue(url, p.name, expected[p.name]))
    total = sum(len(v) for v in expected.values())

    def sent_now() -> int:
        return sum(
            len({c.params.get("text") for c in delivered(p, marks[p.name])}) for p in platforms
        )

    def wait_until(cond: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.02)

    try:
        if fault == "sigterm":
            wait_until(lambda: sent_now() >= total // 3, 60)
            proc.stop()
            proc = ConciergeProcess(env, log).start()
        elif fault == "kill9":
            for share in (4, 2):
                wait_until(lambda share=share: sent_now() >= total // share, 60)
                proc.kill()
                proc = ConciergeProcess(env, log).start()
        elif fault == "db":
            wait_until(lambda: sent_now() >= total // 3, 60)
            if pg is not None:
                pg.outage(5.0)
            else:
                sqlite_lock(sqlite_path, 5.0)
        wait_until(lambda: sent_now() >= total, 120)
        deadline = time.monotonic() + 60
        while asyncio.run(open_rows(url)) and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        proc.stop()
        if pg is not None:
            pg.drop()
    out: dict[str, Figures] = {}
    for p in platforms:
        calls = delivered(p, marks[p.name])
        texts = Counter(str(c.params.get("text")) for c in calls)
        want = {t for _, t in expected[p.name]}
        by_chat: dict[str, list[float]] = defaultdict(list)
        for c in calls:
            by_chat[str(c.params.get(p.param))].append(c.at)
        out[p.name] = Figures(
            expected=len(want),
            lost=len(want - set(texts)),
            doubled=sum(n - 1 for t, n in texts.items() if t in want and n > 1),
            overall=most_in_a_second([c.at for c in calls]),
            per_chat=max((most_in_a_second(v) for v in by_chat.values()), default=0),
            seconds=elapsed,
        )
    return out


def model_dir() -> Path:
    """The demo content's trained model (the tests' cache, else trained here once)."""
    from bot.runtime import build_nlu
    from bot.settings import Settings

    folder = REPO / ".cache" / "test-models" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url="sqlite+aiosqlite:///:memory:",
        content_dir=REPO,
        model_dir=folder,
    )
    build_nlu(settings)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    ap.add_argument("--faults", default=",".join(FAULTS))
    args = ap.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    backends = [args.only] if args.only else ["sqlite", "postgres"]
    tg = FakeTelegram().start()
    sl = FakeSlack().start()
    platforms = [
        Platform("telegram", tg, "sendMessage", "chat_id"),
        Platform("slack", sl, "chat.postMessage", "channel"),
    ]
    folder = model_dir()
    workdir = Path(tempfile.mkdtemp(prefix="concierge-faults-"))
    print(
        f"{'database':9} {'fault':8} {'platform':9} {'expected':>8} {'lost':>5} {'doubled':>7} "
        f"{'max/s':>6} {'chat/s':>6} {'secs':>6}"
    )
    began = time.monotonic()
    try:
        for backend in backends:
            for fault in faults:
                figures = run_case(fault, backend, platforms, folder, workdir)
                for name, f in figures.items():
                    print(
                        f"{backend:9} {fault:8} {name:9} {f.expected:8d} {f.lost:5d} "
                        f"{f.doubled:7d} {f.overall:6d} {f.per_chat:6d} {f.seconds:6.1f}",
                        flush=True,
                    )
    finally:
        tg.stop()
        sl.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"total {time.monotonic() - began:.0f}s")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
