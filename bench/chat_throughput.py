"""Chat throughput: N concurrent clients over the REST webhook and over WebSocket, on loopback.

    python bench/chat_throughput.py [--clients 20] [--messages 50] [--backends sqlite,postgres]
                                    [--rate 300]

The server runs as its own process (`concierge run`) with the demo content; each client sends
its messages one after another and waits for the answer. Prints messages/s and p50/p99 latency
per backend and transport. Target (issue 2): >= 300 msg/s over REST on SQLite, p99 < 50 ms at
20 clients, on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import websockets

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get(
    "CONCIERGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# Each client writes in one language, as a visitor does, and cycles through its questions.
QUESTIONS = {
    "en": [
        "How long does delivery take?",
        "Can I pay with PayPal?",
        "hello",
        "What is your return policy?",
        "Do you ship abroad?",
    ],
    "de": [
        "Wie lange dauert der Versand?",
        "Kann ich mit Kreditkarte bezahlen?",
        "Hallo",
        "Wie kann ich etwas zurückschicken?",
    ],
    "hu": [
        "Mennyi ideig tart a szállítás?",
        "Fizethetek bankkártyával?",
        "Szia",
        "Hogyan küldhetem vissza a terméket?",
    ],
    "sv": [
        "Hur lång är leveranstiden?",
        "Kan jag betala med kort?",
        "Hej",
        "Hur returnerar jag en vara?",
    ],
    "pl": [
        "Ile trwa dostawa?",
        "Czy mogę zapłacić kartą?",
        "Cześć",
        "Jak mogę zwrócić towar?",
    ],
}
LANGS = sorted(QUESTIONS)


def question(client: int, j: int) -> str:
    qs = QUESTIONS[LANGS[client % len(LANGS)]]
    return qs[j % len(qs)]


class Http:
    """A lean HTTP/1.1 keep-alive client for the load (one connection per simulated client).

    httpx spent about 5 ms of CPU a request here, on the same two cores as the server it
    measures; this spends a few hundred microseconds. It only speaks what the server answers
    (Content-Length bodies)."""

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: object) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def ask(self, sender: str, text: str) -> float:
        """One message over Rasa's REST webhook; the seconds until the answer."""
        t = time.perf_counter()
        status, _ = await self.post_json(
            "/webhooks/rest/webhook", {"sender": sender, "message": text}
        )
        if status != 200:
            raise SystemExit(f"the server answered {status}")
        return time.perf_counter() - t

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CONCIERGE_DATABASE_URL": db_url,
        "CONCIERGE_PORT": str(port),
        "CONCIERGE_LOG_LEVEL": "WARNING",
        "CONCIERGE_WEB_RATE_LIMIT_PER_MINUTE": "100000",
        "CONCIERGE_WEB_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",  # all clients share 127.0.0.1
        "CONCIERGE_MODEL_DIR": str(workdir / "model"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "channels.cli", "run"], cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def rest_paced(
    url: str, clients: int, messages: int, rate: float
) -> tuple[float, list[float]]:
    """Open loop: the clients together offer ``rate`` messages/s, each on its own schedule."""
    lat: list[float] = []
    interval = clients / rate

    async def one(i: int) -> None:
        sender = f"paced-{uuid.uuid4().hex[:8]}"
        client = Http(url)
        start = time.perf_counter() + i * interval / clients
        for j in range(messages):
            delay = start + j * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lat.append(await client.ask(sender, question(i, j)))
        await client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return time.perf_counter() - t0, lat


async def rest_load(url: str, clients: int, messages: int) -> tuple[float, list[float]]:
    lat: list[float] = []

    async def one(i: int, n: int) -> None:
        sender = f"bench-{uuid.uuid4().hex[:8]}"
        client = Http(url)
        for j in range(n):
            lat.append(await client.ask(sender, question(i, j)))
        await client.close()

    # warm-up at the same concurrency (batches of every size seen once); the measured clients
    # are new people all the same: their first message creates them
    await asyncio.gather(*(one(i, 5) for i in range(clients)))
    lat.clear()
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, messages) for i in range(clients)))
    return time.perf_counter() - t0, lat


# Distinct texts the fast n-gram model is unsure of (the encoder must run, and its cache cannot
# serve them: each text is asked once): the frozen paraphrase set's questions, numbered.
def distinct_questions() -> list[str]:
    import yaml

    out = []
    for f in sorted((REPO / "bench" / "data" / "paraphrases").glob("*.yml")):
        d = yaml.safe_load(f.read_text(encoding="utf-8"))
        out += [t for block in d["in_scope"] for t in block["examples"]] + d["out_of_scope"]
    return out


async def rest_distinct(url: str, clients: int, messages: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    base = distinct_questions()

    async def one(i: int) -> None:
        sender = f"distinct-{uuid.uuid4().hex[:8]}"
        client = Http(url)
        for j in range(messages):
            k = i * messages + j
            lat.append(await client.ask(sender, f"{base[k % len(base)]} ({k})"))
        await client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return time.perf_counter() - t0, lat


async def ws_load(url: str, clients: int, messages: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    ws_base = url.replace("http://", "ws://") + "/ws/chat"

    async def one(i: int) -> None:
        async with websockets.connect(ws_base) as ws:
            while json.loads(await ws.recv())["type"] != "history":
                pass
            for j in range(messages):
                t = time.perf_counter()
                await ws.send(
                    json.dumps(
                        {
                            "type": "message",
                            "text": question(i, j),
                            "client_id": f"{i}-{j}",
                        }
                    )
                )
                while True:
                    f = json.loads(await ws.recv())
                    if f["type"] == "message" and f["sender"] != "user":
                        break
                lat.append(time.perf_counter() - t)
                # drain the rest of this turn (e.g. "Was this helpful?")
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 0.05)
                except TimeoutError:
                    pass

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    # the drain waits are not the server's time: count them out
    return time.perf_counter() - t0 - messages * 0.05, lat


def create_pg_db() -> tuple[str, str]:
    import asyncpg

    name = f"concierge_bench_{uuid.uuid4().hex[:6]}"

    async def go() -> None:
        c = await asyncpg.connect(PG_ADMIN)
        await c.execute(f'CREATE DATABASE "{name}"')
        await c.close()

    asyncio.run(go())
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", name


def drop_pg_db(name: str) -> None:
    import asyncpg

    async def go() -> None:
        c = await asyncpg.connect(PG_ADMIN)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    asyncio.run(go())


def run_of(
    name: str, url: str, args: argparse.Namespace
) -> tuple[str, Coroutine[Any, Any, tuple[float, list[float]]]]:
    if name == "rest":
        return "rest", rest_load(url, args.clients, args.messages)
    if name == "websocket":
        return "websocket", ws_load(url, args.clients, args.messages)
    if name == "paced":
        return f"rest@{args.rate:g}/s", rest_paced(url, args.clients, args.messages, args.rate)
    if name == "distinct":  # texts that all need the encoder, none served from its cache
        return "rest-distinct", rest_distinct(url, args.clients, max(5, args.messages // 5))
    raise SystemExit(f"unknown run {name!r}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--messages", type=int, default=50)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--rate", type=float, default=300, help="offered msg/s of the paced run")
    ap.add_argument(
        "--transports", default="rest,websocket,paced,distinct", help="which runs to measure"
    )
    args = ap.parse_args()
    print(f"clients={args.clients} messages/client={args.messages} cpus={os.cpu_count()}")
    print("rest, websocket: closed loop (each client waits for its answer, then sends again);")
    print("rest@N/s: open loop, the clients together offer N msg/s (latency at that load)")
    print(f"{'backend':9} {'transport':12} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            pg_name = None
            if backend == "sqlite":
                db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            else:
                db_url, pg_name = create_pg_db()
            proc, url = start_server(db_url, Path(tmp))
            try:
                for name in args.transports.split(","):
                    transport, coro = run_of(name, url, args)
                    elapsed, lat = asyncio.run(coro)
                    n = len(lat)
                    print(
                        f"{backend:9} {transport:12} {n / elapsed:8.0f} "
                        f"{statistics.median(lat) * 1000:8.1f} {pct(lat, 99) * 1000:8.1f}"
                    )
            finally:
                proc.terminate()
                proc.wait(10)
                if pg_name:
                    drop_pg_db(pg_name)


if __name__ == "__main__":
    main()
