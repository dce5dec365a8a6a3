"""Prompt scheduler benchmark (issue 7).

    python bench/scheduler_bench.py scheduler [--contacts 1000000] [--limit N] [--procs 1,2]
    python bench/scheduler_bench.py campaign [--contacts 100000] [--seconds 120]

``scheduler``: a PostgreSQL database with N contacts (generated in SQL: seven time zones, five
languages, Telegram/web identities some unreachable or never started, consents granted and
refused, opted-out people, open handoffs, open complaints, people already at the weekly cap),
a marketing campaign prompt for everyone with a 5% holdout. It prints
- the sweep: the campaign scheduled for every contact (set-based INSERT ... SELECT per zone);
- the due actions evaluated per second (every guard rail; outcomes sent / deferred to the
  morning / skipped by reason / held out) and the outbox rows written per second, with one
  scheduler process and with several claiming the same table (FOR UPDATE SKIP LOCKED);
  ``--limit`` stops each run after N actions (figures are then per second over that part).

``campaign``: N contacts on Telegram, the campaign written to the outbox by the scheduler,
then delivered by the delivery worker and the real python-telegram-bot client to a fake Bot API
server in its own process that *enforces* Telegram's limits (more than 30 messages in any
second, or a second message to a chat within a second, gets 429 with retry_after). It prints the
scheduler time, the delivery rate against the 30/s limit, the 429s, and the end-to-end time
for N (measured for the first ``--seconds`` of delivery and extrapolated, labelled so).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PG_ADMIN = os.environ.get(
    "CONCIERGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TOKEN = "123456:TEST"
ZONES = [
    "Europe/Berlin",
    "Europe/Budapest",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/London",
    "America/New_York",
    "Asia/Tokyo",
]
LANGS = ["en", "de", "hu", "sv", "pl"]
# the campaign fires once, on 6 January at 10:00 local time; the scheduler runs at 16:00 UTC
# (17:00 in Berlin, 11:00 in New York: due and awake; 01:00 in Tokyo: quiet hours, deferred)
SWEEP_AT = datetime(2026, 1, 5, 20, 0, tzinfo=UTC)
RUN_AT = datetime(2026, 1, 6, 16, 0, tzinfo=UTC)
PROMPTS = """
prompts:
  - id: campaign
    purpose: marketing
    trigger: {schedule: "0 10 6 1 *"}
    reentry: always
    response: utter_prompt_roast_of_month
    holdout: 0.05
    goal: {event: purchased, within: 7d}
"""


def mb(kb: int) -> float:
    return kb / 1024


# --- database ---------------------------------------------------------------------------------


async def create_db(name: str) -> str:
    import asyncpg

    from bot.storage.db import Database

    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    db = Database(url)
    await db.upgrade()
    await db.dispose()
    return url


async def drop_db(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def populate(url: str, n: int, *, telegram_only: bool = False) -> dict[str, float]:
    """N contacts and everything the guard rails read, generated inside PostgreSQL."""
    import asyncpg

    zones = "ARRAY[" + ",".join(f"'{z}'" for z in ZONES) + "]"
    langs = "ARRAY[" + ",".join(f"'{x}'" for x in LANGS) + "]"
    now = "'2026-01-01T00:00:00+00'::timestamptz"
    tg = "true" if telegram_only else "i % 10 < 7"
    sql = [
        f"""INSERT INTO contacts (id, public_id, user_id, display_name, language, timezone,
              lifecycle_stage, marketing_opt_out, attributes, purchase_count, monetary_total,
              first_purchase_at, created_at, updated_at)
            SELECT i, md5(i::text), 'u' || i, 'Person ' || i,
              ({langs})[1 + i % 5], ({zones})[1 + (i / 5) % 7],
              'retention', {"false" if telegram_only else "i % 50 = 0"}, '{{}}'::jsonb,
              CASE WHEN i % 10 = 9 THEN 0 ELSE 1 + i % 4 END, 0,
              CASE WHEN i % 10 = 9 THEN NULL ELSE {now} END, {now}, {now}
            FROM generate_series(1, {n}) i""",
        # Telegram for 70% (5% of them never pressed Start, 1% blocked us), web for the rest
        # but 2% who have no identity at all
        f"""INSERT INTO identities (contact_id, channel, external_id, address, started,
              reachable, created_at, last_seen_at)
            SELECT i, 'telegram', 'tg' || i, (100000000 + i)::text,
              {"true" if telegram_only else "i % 20 <> 3"},
              {"true" if telegram_only else "i % 100 <> 7"}, {now}, {now}
            FROM generate_series(1, {n}) i WHERE {tg}""",
        f"""INSERT INTO identities (contact_id, channel, external_id, address, started,
              reachable, created_at, last_seen_at)
            SELECT i, 'web', 'w' || i, 'w' || i, true, true, {now}, {now}
            FROM generate_series(1, {n}) i WHERE NOT ({tg}) AND i % 50 <> 8""",
        # marketing consent: granted by 20%, refused by 3%
        f"""INSERT INTO consents (contact_id, channel, purpose, granted, source, updated_at)
            SELECT i, '*', 'marketing', i % 100 >= 3, 'signup', {now}
            FROM generate_series(1, {n}) i WHERE i % 100 < 23""",
        # 60% chatted before (a conversation each); open handoffs (0.5%) are among them
        f"""INSERT INTO conversations (id, contact_id, status, unsure_streak, state,
              created_at, updated_at)
            SELECT i, i, CASE WHEN i % 200 = 11 THEN 'handoff' ELSE 'bot' END, 0,
              '{{}}'::jsonb, {now}, {now}
            FROM generate_series(1, {n}) i WHERE i % 5 < 3 OR i % 200 = 11""",
        # ... with their past messages (two each), and outbox rows for the answers
        f"""INSERT INTO messages (conversation_id, contact_id, direction, sender, channel, text,
              meta, created_at)
            SELECT c.id, c.contact_id, d, CASE WHEN d = 'in' THEN 'user' ELSE 'bot' END,
              'web', 'an earlier message', '{{}}'::jsonb, {now}
            FROM conversations c, unnest(ARRAY['in', 'out']) d""",
        f"""INSERT INTO outbox (idempotency_key, channel, address, contact_id, message_id,
              purpose, payload, status, attempts, next_attempt_at, created_at, sent_at)
            SELECT 'reply:' || m.id, 'web', 'w' || m.contact_id, m.contact_id, m.id, 'service',
              '{{"text": "an earlier message"}}'::jsonb, 'sent', 1, {now}, {now}, {now}
            FROM messages m WHERE m.direction = 'out'""",
        f"""INSERT INTO handoffs (contact_id, conversation_id, reason, channel, address, status,
              created_at)
            SELECT i, i, 'asked', 'web', 'w' || i, 'open', {now}
            FROM generate_series(1, {n}) i WHERE i % 200 = 11""",
        # open complaints (0.3%)
        f"""INSERT INTO prompt_suppressions (contact_id, kind, opened_at, cause)
            SELECT i, 'complaint', {now}, 'complaint_opened'
            FROM generate_series(1, {n}) i WHERE i % 1000 IN (21, 22, 23)""",
        # 8% got two marketing prompts this week already (the weekly cap of 2)
        f"""INSERT INTO prompt_actions (contact_id, prompt_id, instance_key, due_at, status,
              deferrals, context, created_at, updated_at)
            SELECT i, 'earlier', 'x' || k, {now}, 'sent', 0, '{{}}'::jsonb, {now}, {now}
            FROM generate_series(1, {n}) i, generate_series(1, 2) k WHERE i % 25 IN (4, 5)""",
        """INSERT INTO prompt_sends (action_id, contact_id, prompt_id, instance_key, variant,
              purpose, channel, sent_at)
            SELECT id, contact_id, 'earlier', instance_key, 'a', 'marketing', 'telegram',
              '2026-01-04T12:00:00+00'::timestamptz
            FROM prompt_actions WHERE prompt_id = 'earlier'""",
        "SELECT setval(pg_get_serial_sequence('contacts', 'id'), (SELECT max(id) FROM contacts))",
        "SELECT setval(pg_get_serial_sequence('conversations', 'id'), "
        "(SELECT coalesce(max(id), 1) FROM conversations))",
        "ANALYZE",
    ]
    conn = await asyncpg.connect(dsn(url))
    t = time.perf_counter()
    try:
        for q in sql:
            await conn.execute(q)
    finally:
        await conn.close()
    return {"populate_s": time.perf_counter() - t}


def write_prompts(tmp: Path) -> Path:
    path = tmp / "prompts.yml"
    path.write_text(textwrap.dedent(PROMPTS), encoding="utf-8")
    return path


def make_runtime(url: str, prompts: Path, batch: int, **settings: Any) -> Any:
    os.environ["CONCIERGE_PROMPTS_SCHEDULER"] = "false"
    os.environ["CONCIERGE_INTERNAL_ENABLED"] = "false"
    from bot.clock import ManualClock
    from bot.matcher import SimpleMatcher
    from bot.prompts import configure
    from bot.runtime import Runtime
    from bot.settings import Settings

    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        secret_key="bench",
        content_dir=REPO,
        **settings,
    )
    nlu = SimpleMatcher.from_folder(REPO / "nlu_data", threshold=0.3)
    rt = Runtime(s, clock=ManualClock(RUN_AT), nlu=nlu, start_worker=False)
    add_channels(rt)
    configure(rt, file=prompts, scheduler=False, batch_size=batch)
    return rt


# --- scheduler --------------------------------------------------------------------------------


async def sweep(url: str, prompts: Path) -> float:
    from bot.prompts import service_of

    rt = make_runtime(url, prompts, 500)
    try:
        t = time.perf_counter()
        n = await service_of(rt).sweep(SWEEP_AT)
        took = time.perf_counter() - t
    finally:
        await rt.db.dispose()
    print(f"  sweep: {n:,} actions scheduled in {took:.1f} s ({n / took:,.0f}/s, set-based)")
    return took


async def process(url: str, prompts: Path, batch: int, limit: int | None) -> dict[str, Any]:
    """One scheduler process: due actions until none (or ``limit``); per-batch timings."""
    from bot.prompts import service_of

    rt = make_runtime(url, prompts, batch)
    svc = service_of(rt)
    times: list[float] = []
    from bot.outreach.stats import RoundStats

    total = RoundStats()
    t0 = time.perf_counter()
    try:
        while limit is None or total.processed < limit:
            t = time.perf_counter()
            st = await svc.scheduler.run_batch(RUN_AT, batch)
            if not st.batches:
                break
            times.append(time.perf_counter() - t)
            total.add(st)
    finally:
        await rt.db.dispose()
    wall = time.perf_counter() - t0
    return {
        "wall": wall,
        "processed": total.processed,
        "sent": total.sent,
        "deferred": total.deferred,
        "held": total.held,
        "skipped": dict(total.skipped),
        "batch_median": statistics.median(times) if times else 0.0,
        "rss_mb": mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    }


def run_child(url: str, prompts: Path, batch: int, limit: int | None) -> subprocess.Popen[str]:
    args = [sys.executable, __file__, "_process", url, str(prompts), str(batch), str(limit or 0)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=REPO)


async def reset_actions(url: str, prompts: Path) -> None:
    """Back to "the campaign is due for everyone": undo a run (outbox, transcript, records)
    and sweep again."""
    import asyncpg

    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.execute(
            """
            DELETE FROM prompt_sends WHERE prompt_id = 'campaign';
            DELETE FROM prompt_skips WHERE prompt_id = 'campaign';
            DELETE FROM prompt_assignments WHERE prompt_id = 'campaign';
            DELETE FROM prompt_actions WHERE prompt_id = 'campaign';
            DELETE FROM outbox WHERE idempotency_key LIKE 'prompt:%';
            DELETE FROM messages WHERE intent = 'prompt:campaign';
            DELETE FROM conversations WHERE created_at > '2026-01-02';
            """
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    await sweep(url, prompts)


async def scheduler_bench(args: argparse.Namespace) -> None:
    name = f"concierge_bench_prompts_{uuid.uuid4().hex[:6]}"
    print(f"Prompt scheduler on PostgreSQL, {args.contacts:,} contacts")
    url = await create_db(name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prompts = write_prompts(Path(tmp))
            fig = await populate(url, args.contacts)
            print(f"  data generated in {fig['populate_s']:.0f} s")
            await sweep(url, prompts)
            import asyncpg

            conn = await asyncpg.connect(dsn(url))
            due_at = {
                r["z"]: r["d"]
                for r in await conn.fetch(
                    "SELECT c.timezone z, min(a.due_at) d FROM prompt_actions a "
                    "JOIN contacts c ON c.id = a.contact_id WHERE a.prompt_id = 'campaign' "
                    "GROUP BY 1"
                )
            }
            await conn.execute("VACUUM ANALYZE")
            await conn.close()
            print("  due: " + ", ".join(f"{z.split('/')[1]} {d:%H:%M}Z" for z, d in due_at.items()))
            for procs in args.procs:
                if procs > 1 or args.procs.index(procs) > 0:
                    await reset_actions(url, prompts)
                label = f"{procs} scheduler process{'es' if procs > 1 else ''}"
                per = args.limit // procs if args.limit else None
                t = time.perf_counter()
                children = [run_child(url, prompts, args.batch, per) for _ in range(procs)]
                results = []
                for c in children:
                    out, _ = c.communicate()
                    if c.returncode != 0:
                        raise SystemExit(f"scheduler process failed ({c.returncode})")
                    results.append(json.loads(out.strip().splitlines()[-1]))
                wall = time.perf_counter() - t
                processed = sum(r["processed"] for r in results)
                sent = sum(r["sent"] for r in results)
                deferred = sum(r["deferred"] for r in results)
                held = sum(r["held"] for r in results)
                skipped: collections.Counter[str] = collections.Counter()
                for r in results:
                    skipped.update(r["skipped"])
                busy = max(r["wall"] for r in results)
                print(f"  {label}, batches of {args.batch}:")
                print(
                    f"    {processed:,} due actions evaluated in {busy:.1f} s: "
                    f"{processed / busy:,.0f} actions/s, {sent / busy:,.0f} outbox rows/s"
                )
                print(
                    f"    outcomes: sent {sent:,}, deferred (quiet hours) {deferred:,}, "
                    f"held out {held:,}, skipped "
                    + ", ".join(f"{k} {v:,}" for k, v in skipped.most_common())
                )
                print(
                    f"    median batch {1000 * statistics.median(r['batch_median'] for r in results):.0f} ms, "
                    f"peak RSS per process {max(r['rss_mb'] for r in results):.0f} MB, "
                    f"wall incl. start {wall:.1f} s"
                )
                if args.limit and processed < len(due_at):
                    pass
    finally:
        if not args.keep:
            await drop_db(name)


# --- campaign against the fake Telegram with limits on ------------------------------------------


STRICT_FAKE = """
import asyncio, collections, sys, time
sys.path.insert(0, {repo!r})
from aiohttp import web
from tests.fakes.telegram_api import FakeTelegram


class StrictTelegram(FakeTelegram):
    '''Telegram's limits enforced: over 30 sendMessage in any second, or a second message to
    one chat within a second, is answered 429 with retry_after (as the real API does).'''

    def __init__(self):
        super().__init__({token!r})
        self.window = collections.deque()
        self.last = {{}}
        self.rejected = 0
        self.app.router.add_get('/_fake/stats', self._stats)

    async def _handle(self, request):
        if request.match_info['method'] == 'sendMessage':
            params = await request.post() if request.content_type != 'application/json' else await request.json()
            chat = str(params.get('chat_id'))
            now = time.monotonic()
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) >= 30 or now - self.last.get(chat, -9.0) < 1.0:
                self.rejected += 1
                return web.json_response({{'ok': False, 'error_code': 429,
                    'description': 'Too Many Requests: retry after 1',
                    'parameters': {{'retry_after': 1}}}}, status=429)
            self.window.append(now)
            self.last[chat] = now
        return await super()._handle(request)

    async def _stats(self, request):
        sends = [c.at for c in self.calls if c.method == 'sendMessage' and c.ok]
        return web.json_response({{'sent': len(sends), 'rejected': self.rejected,
                                  'first': min(sends) if sends else None,
                                  'last': max(sends) if sends else None,
                                  'stamps': sends[-20000:]}})


StrictTelegram().serve_forever()
"""


def max_per_second(stamps: list[float]) -> int:
    s = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(s):
        while s[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


async def campaign_bench(args: argparse.Namespace) -> None:
    import httpx
    from sqlalchemy import func, select

    from bot.outbox import DeliveryWorker
    from bot.prompts import service_of
    from bot.storage.models import OutboxMessage
    from channels.telegram import TelegramSender, limiter, make_bot

    name = f"concierge_bench_campaign_{uuid.uuid4().hex[:6]}"
    print(f"Campaign to {args.contacts:,} Telegram contacts, fake Bot API with limits enforced")
    url = await create_db(name)
    fake = subprocess.Popen(
        [sys.executable, "-c", STRICT_FAKE.format(repo=str(REPO), token=TOKEN)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert fake.stdout is not None
    fake_url = fake.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prompts = write_prompts(Path(tmp))
            await populate(url, args.contacts, telegram_only=True)
            await sweep(url, prompts)
            rt = make_runtime(
                url, prompts, args.batch, telegram_token=TOKEN, telegram_api_url=fake_url
            )
            svc = service_of(rt)
            t = time.perf_counter()
            st = await svc.process_due(RUN_AT)
            sched = time.perf_counter() - t
            print(
                f"  scheduler: {st.processed:,} due actions -> {st.sent:,} outbox rows "
                f"({st.deferred:,} deferred to the morning, {st.held:,} held out, "
                f"skipped {dict(st.skipped)}) in {sched:.1f} s ({st.processed / sched:,.0f}/s)"
            )
            bot = make_bot(rt.settings)
            await bot.initialize()
            from bot.clock import SystemClock

            worker = DeliveryWorker(
                rt.db,
                {"telegram": TelegramSender(bot)},
                clock=SystemClock(),
                limiters={"telegram": limiter()},
                batch_size=rt.settings.delivery_batch_size,
            )
            async with rt.db.session() as s:
                queued = (
                    await s.execute(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == "pending")
                    )
                ).scalar_one()
            t = time.perf_counter()
            task = asyncio.create_task(worker.run())
            await asyncio.sleep(args.seconds)
            worker.stop()
            await asyncio.wait([task], timeout=30)
            window = time.perf_counter() - t
            await bot.shutdown()
            async with httpx.AsyncClient(base_url=fake_url) as http:
                stats = (await http.get("/_fake/stats")).json()
            async with rt.db.session() as s:
                sent_rows = (
                    await s.execute(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(
                            OutboxMessage.status == "sent",
                            OutboxMessage.idempotency_key.like("prompt:%"),
                        )
                    )
                ).scalar_one()
            await rt.db.dispose()
            stamps = stats["stamps"]
            span = (stats["last"] - stats["first"]) if stats["sent"] > 1 else 0.0
            rate = (stats["sent"] - 1) / span if span else 0.0
            print(
                f"  delivery for {window:.0f} s: {stats['sent']:,} messages accepted by the fake "
                f"({sent_rows:,} campaign rows marked sent), {rate:.1f} msg/s = "
                f"{100 * rate / 30:.0f}% of Telegram's 30/s; most in any one second: "
                f"{max_per_second(stamps)}; 429s: {stats['rejected']}"
            )
            if rate:
                eta = sched + queued / rate
                label = "measured" if stats["sent"] >= queued else "extrapolated from the first"
                print(
                    f"  end to end for {queued:,} messages: {eta / 60:.1f} min "
                    f"({label} {stats['sent']:,} sends; the 30/s limit alone needs "
                    f"{queued / 30 / 60:.1f} min)"
                )
    finally:
        assert fake.stdin is not None
        fake.stdin.close()
        fake.wait(10)
        if not args.keep:
            await drop_db(name)


# --- entry --------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_process":
        url, prompts, batch, limit = sys.argv[2:6]
        res = asyncio.run(process(url, Path(prompts), int(batch), int(limit) or None))
        print(json.dumps(res))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("scheduler")
    a.add_argument("--contacts", type=int, default=1_000_000)
    a.add_argument("--limit", type=int, default=0, help="stop each run after N actions")
    a.add_argument("--procs", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    a.add_argument("--batch", type=int, default=500)
    a.add_argument("--keep", action="store_true", help="keep the database")
    b = sub.add_parser("campaign")
    b.add_argument("--contacts", type=int, default=100_000)
    b.add_argument("--seconds", type=float, default=120.0, help="delivery time measured")
    b.add_argument("--batch", type=int, default=500)
    b.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.what == "scheduler":
        asyncio.run(scheduler_bench(args))
    else:
        asyncio.run(campaign_bench(args))


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
