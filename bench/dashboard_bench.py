"""Dashboard benchmark (issue 22): every dashboard request on PostgreSQL at scale.

    python bench/dashboard_bench.py [--contacts 100000] [--messages 1000000] [--runs 7]
                                    [--keep]

A throwaway PostgreSQL database (on CONCIERGE_TEST_POSTGRES_URL's server) is migrated and
filled in SQL (``generate_series``, a statement a table): N contacts with one conversation
each, M messages over the past 365 days (a customer's message and the assistant's reply share
their time, as a turn's do; outcomes answered / clarified / fallback / handed off as
``meta.policy`` / ``meta.fallback`` store them; 4% of answers rated), and in proportion
handoffs (2% of turns, with first-response and resolution times and ratings), stage transitions
(1.5 a contact), prompt actions / sends / skips (a quarter of them holdout) / conversions, and
internal updates with deliveries and engagement. Then ``VACUUM ANALYZE`` (autovacuum is off on
the bench machine; a running server's autovacuum keeps statistics and the visibility map).

The product then runs as ``concierge run`` runs it (its own process, real HTTP). The bench
waits until the product's start-up roll-up job (``bot.stats.RollupJob``) has stored the last
closed day (it goes oldest first), as a dashboard finds it once the product has been started,
and prints how long that took. It then logs in to the admin pages and times every dashboard
request, once and then ``--runs`` times: the page (``/admin/dashboard``, all twelve charts) and
each chart's ``/admin/stats/<chart>.json``, for the default range (last 30 days), the whole
year, and the last 30 days of one language and channel. Prints the first request, the median
and the slowest run of each, in milliseconds.

Last, for comparison, the same charts through the query functions (in this process) with and
without the migration's indexes (``0009_dashboard`` downgraded to ``0007`` and upgraded again).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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

from bench.chat_throughput import create_pg_db, drop_pg_db, free_port  # noqa: E402

PASSWORD = "bench-dashboard"

FILL = [
    # contacts: languages and channels as a European shop has them, stages spread
    """
    INSERT INTO contacts (id, public_id, language, preferred_channel, lifecycle_stage,
        marketing_opt_out, attributes, purchase_count, monetary_total, created_at, updated_at,
        last_activity_at, display_name)
    SELECT i, md5(i::text),
        (ARRAY['en','en','en','de','de','hu','pl','sv'])[1 + i % 8],
        (ARRAY['web','web','telegram','slack'])[1 + (i / 8) % 4],
        (ARRAY['awareness','consideration','purchase','onboarding','retention','advocacy',
               'at-risk','churned','reactivated'])[1 + (i * 7) % 9],
        false, '{}'::jsonb, 0, 0, :now - interval '400 days', :now, :now, 'Person ' || i
    FROM generate_series(1, :contacts) i
    """,
    """
    INSERT INTO conversations (id, contact_id, status, last_channel, unsure_streak, state,
        created_at, updated_at)
    SELECT c.id, c.id, 'bot', c.preferred_channel, 0, '{}'::jsonb, c.created_at, c.updated_at
    FROM contacts c
    """,
    # turns: the customer's message and the reply at the same moment
    """
    INSERT INTO messages (conversation_id, contact_id, direction, sender, channel, text, intent,
        confidence, language, feedback, meta, created_at)
    SELECT t.cid, t.cid, d.dir, CASE WHEN d.dir = 'in' THEN 'user' ELSE 'bot' END, c.ch,
        CASE WHEN d.dir = 'in' THEN 'question ' || t.i ELSE 'answer ' || t.i END,
        CASE WHEN t.k < 14 THEN 'faq/shipping' ELSE 'nlu_fallback' END, 0.8, c.lang,
        CASE WHEN d.dir = 'out' AND t.i % 25 = 0 THEN 'helpful'
             WHEN d.dir = 'out' AND t.i % 25 = 1 THEN 'not_helpful' END,
        CASE WHEN d.dir = 'in' THEN '{}'::jsonb
             WHEN t.k < 14 THEN '{"policy": "faq", "intent": "faq/shipping"}'::jsonb
             WHEN t.k < 16 THEN '{"policy": "faq", "fallback": "clarify"}'::jsonb
             WHEN t.k < 18 THEN '{"policy": "faq", "fallback": "default"}'::jsonb
             WHEN t.k = 18 THEN '{"policy": "handoff", "intent": "request_human"}'::jsonb
             ELSE '{"policy": "flows", "intent": "tour"}'::jsonb END,
        t.at
    FROM (
        SELECT i, i % 20 AS k, 1 + (i::bigint * 7919) % :contacts AS cid,
            :now - ((hashtext(i::text)::bigint & 2147483647) % (365 * 86400))
                * interval '1 second' AS at
        FROM generate_series(1, :turns) i
    ) t
    JOIN (SELECT id, language AS lang, preferred_channel AS ch FROM contacts) c ON c.id = t.cid
    CROSS JOIN (VALUES ('in'), ('out')) d(dir)
    """,
    """
    INSERT INTO handoffs (contact_id, conversation_id, reason, language, channel, address,
        status, csat, created_at, first_response_at, resolved_at)
    SELECT c.id, c.id, (ARRAY['asked','unsure','frustrated','flow','vip'])[1 + i % 5],
        c.language, c.preferred_channel, 'a' || i,
        CASE WHEN i % 5 = 0 THEN 'open' ELSE 'resolved' END,
        CASE WHEN i % 3 = 0 THEN 1 + i % 5 END,
        t.at,
        CASE WHEN i % 10 <> 0 THEN t.at + (i % 120) * interval '1 minute' END,
        CASE WHEN i % 5 <> 0 THEN t.at + (60 + i % 600) * interval '1 minute' END
    FROM (
        SELECT i, 1 + (i::bigint * 31) % :contacts AS cid,
            :now - ((hashtext('h' || i)::bigint & 2147483647) % (365 * 86400))
                * interval '1 second' AS at
        FROM generate_series(1, :handoffs) i
    ) t JOIN contacts c ON c.id = t.cid
    """,
    """
    INSERT INTO stage_transitions (contact_id, from_stage, to_stage, cause, occurred_at,
        created_at)
    SELECT 1 + (i::bigint * 17) % :contacts, 'awareness',
        (ARRAY['consideration','purchase','onboarding','retention','at-risk','churned'])
            [1 + i % 6],
        'event', t.at, t.at
    FROM (
        SELECT i, :now - ((hashtext('s' || i)::bigint & 2147483647) % (365 * 86400))
            * interval '1 second' AS at
        FROM generate_series(1, :transitions) i
    ) t
    """,
    """
    INSERT INTO prompt_actions (id, contact_id, prompt_id, instance_key, due_at, status,
        deferrals, context, created_at, updated_at)
    SELECT i, 1 + (i::bigint * 13) % :contacts,
        (ARRAY['cart_reminder','review_request','reorder'])[1 + i % 3], 'k' || i,
        :now, 'sent', 0, '{}'::jsonb, :now, :now
    FROM generate_series(1, :actions) i
    """,
    """
    INSERT INTO prompt_sends (action_id, contact_id, prompt_id, instance_key, variant, purpose,
        channel, sent_at)
    SELECT a.id, a.contact_id, a.prompt_id, a.instance_key, 'a', 'marketing',
        (ARRAY['web','telegram'])[1 + a.id % 2],
        :now - ((hashtext('p' || a.id)::bigint & 2147483647) % (365 * 86400))
            * interval '1 second'
    FROM prompt_actions a WHERE a.id % 4 <> 0
    """,
    """
    INSERT INTO prompt_skips (action_id, contact_id, prompt_id, instance_key, variant, reason,
        at)
    SELECT a.id, a.contact_id, a.prompt_id, a.instance_key,
        CASE WHEN a.id % 8 = 0 THEN 'holdout' END,
        CASE WHEN a.id % 8 = 0 THEN 'holdout'
             ELSE (ARRAY['quiet_hours','frequency_cap','opted_out'])[1 + a.id % 3] END,
        :now - ((hashtext('p' || a.id)::bigint & 2147483647) % (365 * 86400))
            * interval '1 second'
    FROM prompt_actions a WHERE a.id % 4 = 0
    """,
    """
    INSERT INTO prompt_conversions (prompt_id, contact_id, instance_key, variant, goal,
        exposed_at, converted_at)
    SELECT a.prompt_id, a.contact_id, a.instance_key,
        CASE WHEN a.id % 8 = 0 THEN 'holdout' ELSE 'a' END, 'order', t.at,
        t.at + interval '1 day'
    FROM prompt_actions a
    CROSS JOIN LATERAL (
        SELECT :now - ((hashtext('p' || a.id)::bigint & 2147483647) % (365 * 86400))
            * interval '1 second' AS at) t
    WHERE a.id % 9 = 0 OR a.id % 8 = 0 AND a.id % 5 = 0
    """,
    """
    INSERT INTO internal_employees (id, slack_user_id, name, department, active, groups,
        subscriptions, opted_down, source, created_at, updated_at)
    SELECT i, 'U' || i, 'Employee ' || i, (ARRAY['sales','support','ops'])[1 + i % 3], true,
        '[]'::jsonb, '[]'::jsonb, '[]'::jsonb, 'slack', :now, :now
    FROM generate_series(1, :employees) i
    """,
    """
    INSERT INTO internal_updates (id, key, kind, title, content, audience, delivery, goal,
        priority, important, status, created_at, updated_at)
    SELECT i, 'update-' || i, 'update', 'Update ' || i, '{}'::jsonb, 'everyone', 'dm',
        'engagement', 'normal', false, 'active', :now - i * interval '7 days', :now
    FROM generate_series(1, 52) i
    """,
    """
    INSERT INTO internal_deliveries (update_id, employee_id, status, due_at, deferred_count,
        important_pass, sent_at, created_at)
    SELECT u.id, e.id, 'sent', u.created_at, 0, false, u.created_at, u.created_at
    FROM internal_updates u CROSS JOIN internal_employees e
    """,
    """
    INSERT INTO internal_engagement (update_id, employee_id, kind, value, event_key, created_at)
    SELECT u.id, e.id, 'reaction', 'thumbsup', u.id || ':' || e.id, u.created_at
    FROM internal_updates u JOIN internal_employees e ON (e.id + u.id) % 4 = 0
    """,
]


def params(contacts: int, messages: int, now: datetime) -> dict[str, Any]:
    turns = messages // 2
    return {
        "now": now,
        "contacts": contacts,
        "turns": turns,
        "handoffs": turns // 25,
        "transitions": contacts * 3 // 2,
        "actions": contacts // 2,
        "employees": 500,
    }


async def fill(url: str, p: dict[str, Any]) -> dict[str, int]:
    import asyncpg

    from bot.storage.db import Database

    db = Database(url)
    await db.upgrade()
    await db.dispose()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for sql in FILL:
            names = re.findall(r"(?<!:):(\w+)", sql)
            order = list(dict.fromkeys(names))
            q = sql
            for i, n in enumerate(order, 1):
                cast = "::timestamptz" if n == "now" else "::bigint"
                q = re.sub(rf"(?<!:):{n}\b", f"(${i}{cast})", q)
            t0 = time.perf_counter()
            await conn.execute(q, *(p[n] for n in order))
            table = re.search(r"INSERT INTO (\w+)", sql)
            print(f"  filled {table[1] if table else '?'} in {time.perf_counter() - t0:.1f} s")
        for seq in ("contacts", "conversations", "prompt_actions", "internal_employees"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{seq}', 'id'), (SELECT max(id) FROM {seq}))"
            )
        t0 = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - t0:.1f} s")
        counts = {}
        for t in (
            "contacts",
            "messages",
            "handoffs",
            "stage_transitions",
            "prompt_sends",
            "prompt_skips",
            "prompt_conversions",
            "internal_deliveries",
        ):
            counts[t] = int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
        return counts
    finally:
        await conn.close()


def start_product(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CONCIERGE_DATABASE_URL": url,
        "CONCIERGE_PORT": str(port),
        "CONCIERGE_LOG_LEVEL": "WARNING",
        "CONCIERGE_ADMIN_PASSWORD": PASSWORD,
        "CONCIERGE_MODEL_DIR": str(REPO / ".cache" / "test-models" / "demo"),
        "CONCIERGE_SECRET_KEY": "bench-secret",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"], cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the product did not start")


async def rollups_ready(url: str, timeout: float = 600.0) -> float:
    """Wait until the product's start-up roll-up job (bot.stats.RollupJob) stored the last closed
    day (it goes oldest first), as a dashboard finds it after the product's first start; the
    seconds that took."""
    import asyncpg

    from bot.stats import CLOSED_AFTER, DONE

    last = ((datetime.now(UTC) - CLOSED_AFTER).date() - timedelta(days=1)).isoformat()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < timeout:
            got = await conn.fetchval("SELECT max(day) FROM stats_daily WHERE metric = $1", DONE)
            if got is not None and got >= last:
                return time.perf_counter() - t0
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise SystemExit("the roll-up job did not finish")


def login(c: httpx.Client) -> None:
    form = c.get("/admin/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf, "no CSRF token in the login form"
    r = c.post("/admin/login", data={"name": "bench", "password": PASSWORD, "csrf": csrf[1]})
    assert r.status_code == 303, r.text


def time_requests(
    base: str, runs: int, views: dict[str, str]
) -> list[tuple[str, str, float, float, float]]:
    from bot.stats import CHARTS

    out: list[tuple[str, str, float, float, float]] = []
    with httpx.Client(base_url=base, timeout=120) as c:
        login(c)
        for view, query in views.items():
            paths = ["/admin/dashboard", *(f"/admin/stats/{n}.json" for n in CHARTS)]
            for path in paths:
                t0 = time.perf_counter()  # the first: plans, connections (roll-ups: built)
                c.get(f"{path}?{query}").raise_for_status()
                first = (time.perf_counter() - t0) * 1000
                took = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    r = c.get(f"{path}?{query}")
                    took.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                out.append((view, path, first, statistics.median(took), max(took)))
    return out


async def time_functions(url: str, runs: int, query: dict[str, str]) -> dict[str, float]:
    from bot.stats import CHARTS, Filters
    from bot.storage.db import Database

    db = Database(url)
    f = Filters.parse(query, datetime.now(UTC).date())
    out: dict[str, float] = {}
    try:
        for name, fn in CHARTS.items():
            took = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                async with db.session() as s:
                    await fn(s, f)
                took.append((time.perf_counter() - t0) * 1000)
            out[name] = statistics.median(took[1:])
    finally:
        await db.dispose()
    return out


async def indexes(url: str, *, drop: bool) -> None:
    """Drop (or create again) the date-range indexes of migration 0009_dashboard; ANALYZE."""
    import importlib

    import asyncpg

    mig = importlib.import_module("bot.storage.migrations.versions.0009_dashboard")
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for name, table, columns, where in mig.INDEXES:
            if drop:
                await conn.execute(f"DROP INDEX {name}")
            else:
                cond = f" WHERE {where.text}" if where is not None else ""
                await conn.execute(f"CREATE INDEX {name} ON {table} ({', '.join(columns)}){cond}")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = ap.parse_args()

    url, name = create_pg_db()
    now = datetime.now(UTC)
    today = now.date()
    try:
        print(f"filling {name}: {args.contacts} contacts, {args.messages} messages")
        t0 = time.perf_counter()
        counts = asyncio.run(fill(url, params(args.contacts, args.messages, now)))
        print(f"filled in {time.perf_counter() - t0:.0f} s: {counts}")
        year = f"start={today.replace(year=today.year - 1).isoformat()}&end={today.isoformat()}"
        views = {
            "last 30 days": "",
            "last 365 days": year,
            "30 days, de + telegram": "language=de&channel=telegram",
        }
        with tempfile.TemporaryDirectory() as tmp:
            proc, base = start_product(url, Path(tmp))
            try:
                took = asyncio.run(rollups_ready(url))
                print(f"start-up roll-up job done {took:.1f} s after the product answered")
                rows = time_requests(base, args.runs, views)
            finally:
                proc.terminate()
                proc.wait(30)
        print(f"\nover HTTP (concierge run, PostgreSQL), {args.runs} runs each, milliseconds")
        print(f"{'view':<24} {'request':<36} {'first':>8} {'median':>8} {'max':>8}")
        for view, path, first, med, worst in rows:
            flag = "" if med < 500 else "  <-- over 500 ms"
            print(f"{view:<24} {path:<36} {first:>8.1f} {med:>8.1f} {worst:>8.1f}{flag}")
        slowest = max(rows, key=lambda r: r[3])
        print(f"slowest median: {slowest[1]} ({slowest[0]}) {slowest[3]:.1f} ms")

        print(
            "\nquery functions in-process, last 30 days, median ms: with / without the 0009 "
            "indexes (message charts read the roll-ups in both: the first run, which computes "
            "them, is left out)"
        )
        with_ix = asyncio.run(time_functions(url, args.runs, {}))
        asyncio.run(indexes(url, drop=True))
        without = asyncio.run(time_functions(url, args.runs, {}))
        asyncio.run(indexes(url, drop=False))
        for chart in with_ix:
            print(f"  {chart:<16} {with_ix[chart]:>8.1f} {without[chart]:>8.1f}")
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            drop_pg_db(name)


if __name__ == "__main__":
    main()
