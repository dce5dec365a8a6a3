"""A runtime on a manual clock with a content folder of its own, and a few employees."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal import configure
from bot.internal.config import load_internal_settings
from bot.internal.employees import EmployeeRecord, upsert_employees
from bot.internal.service import InternalService
from bot.matcher import SimpleMatcher
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import OutboxMessage
from bot.types import Delivery, SendResult
from channels.slack import CAPABILITIES, CHANNEL
from tests.conftest import REPO

MONDAY = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # Monday 5 January 2026, 07:00 in Berlin


class SetClock(ManualClock):
    """Time moves only when a test sets it. (``ManualClock.sleep`` jumps ahead, so another
    feature's background loop sleeping on the runtime's clock would run the time away.)"""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


PEOPLE = [
    # slack id, name, department, time zone, language
    ("U01ANNA", "Anna Berg", "Support", "Europe/Berlin", "de"),
    ("U02BEN", "Ben Kovacs", "Support", "Europe/Budapest", "hu"),
    ("U03CARA", "Cara Lind", "Support", "America/New_York", "en"),
    ("U04DAN", "Dan Nowak", "Sales", "Europe/Warsaw", "pl"),
    ("U05EVA", "Eva Sand", "Sales", "Europe/Stockholm", "sv"),
    ("U06FIN", "Finn Ode", "Engineering", "Europe/Berlin", "en"),
]


# A shop content folder of its own. Without a lifecycle.yml the lifecycle feature would use
# the demo shop's, whose texts this folder does not have: one stage is all these tests need.
LIFECYCLE = "version: 1\ninitial: awareness\nstages:\n  awareness: {description: Everyone}\n"


def content_folder(root: Path) -> Path:
    (root / "updates").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "internal").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "lifecycle.yml").write_text(LIFECYCLE, encoding="utf-8")
    return root


class Content:
    """The content folder of one test: write update files and the company calendar."""

    def __init__(self, root: Path) -> None:
        self.root = content_folder(root)

    def update(self, name: str, front: str, body: str = "Body text.") -> Path:
        path = self.root / "updates" / f"{name}.md"
        path.write_text(f"---\n{textwrap.dedent(front).strip()}\n---\n{body}\n", encoding="utf-8")
        return path

    def calendar(self, text: str) -> Path:
        path = self.root / "updates" / "calendar.yml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path


@pytest.fixture
def content(tmp_path: Path) -> Content:
    return Content(tmp_path / "content")


@pytest.fixture
def clock() -> ManualClock:
    return SetClock(MONDAY)


@pytest.fixture
async def rt(
    db_url: str,
    make_settings: Callable[..., Settings],
    content: Content,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Runtime]:
    settings = make_settings(
        db_url,
        content_dir=content.root,
        default_timezone="Europe/Berlin",
        internal=load_internal_settings(scheduler=False),  # rounds run when a test says
    )
    nlu = SimpleMatcher.from_folder(REPO / "nlu_data", threshold=0.3)
    r = Runtime(settings, clock=clock, nlu=nlu, start_worker=False)
    await r.start(migrate=False)
    yield r
    await r.stop()


class SlackSender:
    """Slack as the product registers it (what it can do); the worker is off in these tests."""

    channel = CHANNEL
    capabilities = CAPABILITIES

    async def send(self, delivery: Delivery) -> SendResult:
        raise AssertionError("the worker does not run in these tests")


@pytest.fixture
async def svc(rt: Runtime, clock: ManualClock) -> InternalService:
    """The service with its defaults (cap 3 a week, digest on Friday 15:00), team digest off;
    employees are on Slack, as ``channels.slack_internal.attach`` says."""
    s = configure(rt, team_digest=False, scheduler=False)
    rt.add_sender(SlackSender())
    s.channel = CHANNEL
    async with rt.db.session() as session:
        await upsert_employees(
            session,
            [
                EmployeeRecord(
                    slack_user_id=sid,
                    name=name,
                    email=f"{name.split()[0].lower()}@example.com",
                    department=dept,
                    timezone=tz,
                    language=lang,
                )
                for sid, name, dept, tz, lang in PEOPLE
            ],
            now=clock.now(),
        )
    return s


async def outbox_rows(rt: Runtime, **where: Any) -> list[OutboxMessage]:
    async with rt.db.session() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        for k, v in where.items():
            q = q.where(getattr(OutboxMessage, k) == v)
        return list((await s.execute(q)).scalars())


async def step(svc: InternalService, clock: ManualClock, when: datetime) -> None:
    """Move the clock and run one scheduler round."""
    clock.set(when)
    await svc.run_once(when)
