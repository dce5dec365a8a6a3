"""What one database statement costs through the product's storage layer (SQLite by default).

    python bench/statement_cost.py [--url sqlite+aiosqlite:///path.db | postgresql+asyncpg://...]

Prints microseconds per statement: Core on a connection, Core and ORM in a session,
and a whole transaction of one statement (BEGIN, SELECT, COMMIT). Medians of several rounds of 2,000.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from bot.storage.db import Database
from bot.storage.models import Contact

N, ROUNDS = 2000, 5


async def per_call(fn: Callable[[], Awaitable[object]]) -> float:
    rounds = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        for _ in range(N):
            await fn()
        rounds.append((time.perf_counter() - t) / N * 1e6)
    return statistics.median(rounds)


async def main(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    one = text("SELECT 1")
    core = select(Contact.id, Contact.language).where(Contact.id == 1)
    orm = select(Contact).where(Contact.id == 1)
    print(f"{db.dialect}: microseconds per call (median of {ROUNDS} rounds of {N})")
    async with db.engine.connect() as c:

        async def on_conn() -> object:
            return (await c.execute(one)).scalar()

        print(f"  Core SELECT 1 on a connection   {await per_call(on_conn):7.1f}")
    async with db.session() as s:

        async def in_session_core() -> object:
            return (await s.execute(core)).first()

        async def in_session_orm() -> object:
            return (await s.execute(orm)).first()

        print(f"  Core SELECT in a session        {await per_call(in_session_core):7.1f}")
        print(f"  ORM SELECT in a session         {await per_call(in_session_orm):7.1f}")

    async def transaction() -> object:
        async with db.session() as s:
            return (await s.execute(one)).scalar()

    print(f"  a transaction of one SELECT 1   {await per_call(transaction):7.1f}")
    await db.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.url or f"sqlite+aiosqlite:///{tmp}/bench.db"))
