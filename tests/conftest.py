"""Shared fixtures: databases (SQLite and a real PostgreSQL), settings, runtime, live server.

PostgreSQL: ``CONCIERGE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
is used to create one throw-away database per test session. Without a reachable server the
PostgreSQL variants are skipped locally and FAIL in CI (``CI=true``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Base
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "CONCIERGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def missing(what: str) -> None:
    """A part the tests need is missing: a failure in CI, a skip on a laptop."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing part is a failure)", pytrace=False)
    pytest.skip(what)


# --- PostgreSQL ------------------------------------------------------------------------------


class _Postgres:
    def __init__(self) -> None:
        self.url: str | None = None
        self.error: str | None = None
        self._name = f"concierge_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self) -> None:
        try:
            asyncio.run(self._admin(f'CREATE DATABASE "{self._name}"'))
        except Exception as e:
            self.error = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e}"
            return
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{self._name}"

        async def upgrade() -> None:
            db = Database(self.url or "")
            await db.upgrade()
            await db.dispose()

        asyncio.run(upgrade())

    def drop(self) -> None:
        if self.url:
            try:
                asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))
            except Exception:
                pass


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_Postgres]:
    pg = _Postgres()
    pg.create()
    yield pg
    pg.drop()


async def truncate_all(url: str) -> None:
    from sqlalchemy import text

    db = Database(url)
    async with db.engine.begin() as conn:
        existing = set(
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            ).scalars()
        )
        names = ", ".join(
            f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables) if t.name in existing
        )
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await db.dispose()


# --- SQLite template -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"

    async def upgrade() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.upgrade()
        await db.dispose()

    asyncio.run(upgrade())
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated, empty database: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "concierge.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    pg: _Postgres = request.getfixturevalue("postgres_server")
    if pg.url is None:
        missing(pg.error or "PostgreSQL missing")
    assert pg.url
    asyncio.run(truncate_all(pg.url))
    yield pg.url


@pytest.fixture
def pg_url(postgres_server: _Postgres) -> str:
    """A migrated, empty PostgreSQL database only (multi-process and SKIP LOCKED tests)."""
    if postgres_server.url is None:
        missing(postgres_server.error or "PostgreSQL missing")
    assert postgres_server.url
    asyncio.run(truncate_all(postgres_server.url))
    return postgres_server.url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite database only (for tests that need no PostgreSQL variant)."""
    target = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    d = Database(db_url)
    yield d
    await d.dispose()


# --- settings and runtime --------------------------------------------------------------------


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """NLU model folders kept between runs (a model retrains when its content changes)."""
    path = REPO / ".cache" / "test-models"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def make_settings(tmp_path: Path, model_cache: Path) -> Callable[..., Settings]:
    def make(database_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "content_dir": REPO,
            "model_dir": model_cache / "demo",
            "secret_key": "test-secret",
            "delivery_poll_interval": 0.05,
            "delivery_backoff_base": 0.05,
            "delivery_backoff_max": 0.5,
        }
        values.update(overrides)
        if "content_dir" in overrides and "model_dir" not in overrides:
            values["model_dir"] = (
                model_cache / uuid.uuid5(uuid.NAMESPACE_URL, str(overrides["content_dir"])).hex
            )
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(db_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(db_url)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime(settings)
    await rt.start(migrate=False)
    yield rt
    await rt.stop()


# --- a live HTTP server ----------------------------------------------------------------------


class LiveServer:
    """The real ASGI app under uvicorn on 127.0.0.1, port 0, in a thread of its own."""

    def __init__(self, app: Any) -> None:
        self.app = app
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws_ping_interval=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve(sockets=[self.sock])

        asyncio.run(serve())

    def wait_drained(self, timeout: float = 20.0) -> None:
        """Until the server has nothing left to do: no turn running or waiting, and no outbox
        row due (within a minute: retries count) that is not sent or dead. What the server
        would send has then been sent, so a count taken now is final ("nothing more
        happened"); a server that died never gets here."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.thread.is_alive() and not self.server.should_exit, "the server stopped"
            busy = asyncio.run_coroutine_threadsafe(self._busy(), self.loop).result(timeout)
            if not busy:
                return
            assert time.monotonic() < deadline, f"the server did not settle: {busy}"
            time.sleep(0.02)

    async def _busy(self) -> str:
        from datetime import timedelta

        from sqlalchemy import func, select

        from bot.storage.models import OutboxMessage

        rt = self.app.state.runtime
        engine = rt.engine
        if engine._queue or (engine._runner is not None and not engine._runner.done()):
            return "turns running"
        soon = rt.clock.now() + timedelta(minutes=1)
        async with rt.db.session() as s:
            left = (
                await s.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.status.in_(["pending", "sending"]),
                        OutboxMessage.next_attempt_at <= soon,
                    )
                )
            ).scalar_one()
        return f"{left} outbox rows to send" if left else ""

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 240  # the first start may train the NLU model
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def start_server() -> Iterator[Callable[..., LiveServer]]:
    """``start_server(settings)`` -> a running :class:`LiveServer` (stopped after the test)."""
    from channels.app import create_app

    servers: list[LiveServer] = []

    def start(settings: Settings, **kwargs: Any) -> LiveServer:
        srv = LiveServer(create_app(settings, **kwargs)).start()
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def live_server(
    sqlite_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> str:
    """Base URL of the whole product on SQLite with the demo content."""
    return start_server(make_settings(sqlite_url)).url


# --- fake platforms --------------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    """A fake Telegram Bot API on a port of its own (tests/fakes/telegram_api.py)."""
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API on a port of its own (tests/fakes/slack_api.py)."""
    fake = FakeSlack().start()
    yield fake
    fake.stop()
