"""Scale-out on PostgreSQL: web chat throughput of two ``concierge run`` processes against one.

    python bench/scale_out.py [--clients 40] [--messages 30]

One throw-away PostgreSQL database; first one process, then two on the same database, each a
``concierge run`` of its own. WebSocket clients are dealt round-robin to the processes (as a
round-robin proxy would); each sends its messages one after another and waits for the answer.
A reply is written to the outbox by the process holding the visitor's socket and delivered by
whichever process's worker claims it: pushes to a socket on the other process cross over
PostgreSQL LISTEN/NOTIFY. Prints messages/s, p50/p99 and how many replies were delivered by a
process without the visitor's socket (``crossed``; with one process: visitors gone before a
late "Was this helpful?") per round, then the medians and their ratio two/one. On a shared
2-core machine (the load generator takes a core too) the ratio is bounded by the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_throughput import create_pg_db, drop_pg_db, pct, question, start_server


async def ws_load(urls: list[str], clients: int, messages: int) -> tuple[float, list[float]]:
    lat: list[float] = []

    async def one(i: int) -> None:
        base = urls[i % len(urls)].replace("http://", "ws://") + "/ws/chat"
        async with websockets.connect(base) as ws:
            while json.loads(await ws.recv())["type"] != "history":
                pass
            for j in range(messages):
                t = time.perf_counter()
                await ws.send(
                    json.dumps({"type": "message", "text": question(i, j), "client_id": f"{i}-{j}"})
                )
                while True:
                    f = json.loads(await ws.recv())
                    if f["type"] == "message" and f["sender"] != "user":
                        break
                lat.append(time.perf_counter() - t)
                try:  # the rest of the turn ("Was this helpful?")
                    while True:
                        await asyncio.wait_for(ws.recv(), 0.05)
                except TimeoutError:
                    pass

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return time.perf_counter() - t0 - messages * 0.05, lat


async def crossed(db_url: str) -> tuple[int, int]:
    """Web replies delivered by a process without the visitor's socket (pushed over NOTIFY),
    and all web replies sent."""
    from sqlalchemy import func, select

    from bot.storage.db import Database
    from bot.storage.models import OutboxMessage

    db = Database(db_url)
    try:
        async with db.session() as s:
            sent = (OutboxMessage.channel == "web") & (OutboxMessage.status == "sent")
            total = (await s.execute(select(func.count()).where(sent))).scalar_one()
            over = (
                await s.execute(
                    select(func.count()).where(sent, OutboxMessage.platform_message_id.like("%:0"))
                )
            ).scalar_one()
        return int(over), int(total)
    finally:
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--messages", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3, help="rounds (one, then two, each)")
    args = ap.parse_args()
    print(f"clients={args.clients} messages/client={args.messages} cpus={os.cpu_count()}")
    print(f"{'processes':9} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'crossed':>12}")
    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in [1, 2] * args.repeat:  # alternating: a busy spell of the machine hits both
            db_url, name = create_pg_db()
            procs: list[subprocess.Popen[bytes]] = []
            try:
                urls = []
                for _ in range(n):
                    proc, url = start_server(db_url, Path(tmp))
                    procs.append(proc)
                    urls.append(url)
                time.sleep(3)  # the processes count each other (bot/peers.py, every 2 s)
                elapsed, lat = asyncio.run(ws_load(urls, args.clients, args.messages))
                over, total = asyncio.run(crossed(db_url))
                rates[n].append(len(lat) / elapsed)
                print(
                    f"{n:9d} {rates[n][-1]:8.0f} {statistics.median(lat) * 1000:8.1f} "
                    f"{pct(lat, 99) * 1000:8.1f} {over:5d}/{total:<6d}",
                    flush=True,
                )
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(20)
                drop_pg_db(name)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median msg/s: one {one:.0f}, two {two:.0f}; two/one: {two / one:.2f}x")


if __name__ == "__main__":
    main()
