"""Internal updates through Slack, end to end: people synced from a fake Slack Web API, updates
posted by the real Slack channel (slack_sdk) at each person's local time, the weekly cap and the
digest, and signed reaction and button requests into the real slack-bolt app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import ManualClock
from bot.internal.config import load_internal_settings
from bot.internal.models import Employee, EngagementEvent, Update, UpdateDelivery
from bot.matcher import SimpleMatcher
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import OutboxMessage
from tests.auxil.build_messages import slack_dm
from tests.bot.internal.conftest import SetClock, content_folder
from tests.conftest import REPO, LiveServer
from tests.fakes.base import Call
from tests.fakes.slack_api import send_action, send_event
from tests.fakes.slack_directory import FakeSlackDirectory

SECRET = "signing-secret"
T = TypeVar("T")


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def slack() -> Iterator[FakeSlackDirectory]:
    fake = FakeSlackDirectory().start()
    dept = "Xf01DEPT"
    fake.add_user("U01ANNA", "Anna Berg", locale="de-DE", title="Agent", fields={dept: "Support"})
    fake.add_user("U02BEN", "Ben Kovacs", tz="Europe/Budapest", fields={dept: "Support"})
    fake.add_user("U03CARA", "Cara Lind", tz="America/New_York", fields={dept: "Support"})
    fake.add_user("U04DAN", "Dan Nowak", tz="Europe/Warsaw", fields={dept: "Sales"})
    fake.add_user("U05EVA", "Eva Sand", tz="Europe/Stockholm", fields={dept: "Sales"})
    fake.add_user("U06GONE", "Gone Person", fields={dept: "Support"}, deleted=True)
    fake.add_user("UBOTX", "Some Bot", fields={dept: "Support"}, is_bot=True)
    fake.usergroups = [{"id": "S01", "handle": "support-leads", "users": ["U02BEN"]}]
    yield fake
    fake.stop()


def run_db(db_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        db = Database(db_url)
        try:
            async with db.session() as s:
                return await work(s)
        finally:
            await db.dispose()

    return asyncio.run(go())


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def settled(server: LiveServer, db_url: str, clock: ManualClock, timeout: float = 30.0) -> None:
    """Until the scheduler has done what is due at the clock's time: every update due is
    planned, every planned delivery due is decided (sent, held, deferred...), and what was
    queued has gone out. A stopped scheduler never gets here."""
    now = clock.now()

    async def due(s: AsyncSession) -> int:
        updates = select(func.count()).select_from(Update)
        updates = updates.where(Update.status == "scheduled", Update.not_before <= now)
        planned = select(func.count()).select_from(UpdateDelivery)
        planned = planned.where(UpdateDelivery.status == "planned", UpdateDelivery.due_at <= now)
        return int(
            (await s.execute(updates)).scalar_one() + (await s.execute(planned)).scalar_one()
        )

    eventually(lambda: run_db(db_url, due) == 0, timeout)
    server.wait_drained()


@pytest.fixture
def clock() -> ManualClock:
    return SetClock(utc(5, 6, 0))  # Monday 5 January 2026, 07:00 in Berlin


@pytest.fixture
def server(
    slack: FakeSlackDirectory,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    content = content_folder(tmp_path / "content")
    for i, day in enumerate((5, 6, 7, 8), 1):
        (content / "updates" / f"news-{i}.md").write_text(
            f"---\ntitle: Weekly news number {i}\naudience: department:support\n"
            f"schedule: 2026-01-{day:02d} 10:00\ngoal: product_knowledge\n---\n"
            f"What happened, **part {i}**.\n"
        )
    settings = make_settings(
        db_url,
        content_dir=content,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        default_timezone="Europe/Berlin",
        internal=load_internal_settings(
            scheduler_interval=0.05,
            team_digest=False,
            profile_fields={"department": "Xf01DEPT", "title": "title"},
        ),
    )
    nlu = SimpleMatcher.from_folder(REPO / "nlu_data", threshold=0.3)
    runtime = Runtime(settings, clock=clock, nlu=nlu)
    srv = start_server(settings, runtime=runtime)

    def synced() -> bool:
        async def count(s: AsyncSession) -> int:
            q = select(func.count()).select_from(Employee).where(Employee.active)
            return int((await s.execute(q)).scalar_one())

        return run_db(db_url, count) == 5

    eventually(synced)  # the server syncs people from Slack when it starts
    return srv


def posts_to(slack: FakeSlackDirectory, users: set[str]) -> list[Call]:
    return [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") in users]


def test_support_updates_at_local_time_with_cap_digest_reactions_and_buttons(
    slack: FakeSlackDirectory, server: LiveServer, clock: ManualClock, db_url: str
) -> None:
    support = {"U01ANNA", "U02BEN", "U03CARA"}
    people = run_db(db_url, lambda s: _people(s))
    assert people["U01ANNA"] == ("Support", "Agent", "de", "Europe/Berlin")
    assert people["U02BEN"][0] == "Support" and "U06GONE" not in people and "UBOTX" not in people

    settled(server, db_url, clock)
    assert slack.posted() == []  # 07:00 in Berlin: too early
    clock.set(utc(5, 9, 0))  # 10:00 in Berlin and Budapest
    first = slack.wait_for("chat.postMessage", 2)
    assert {c.params["channel"] for c in first} == {"U01ANNA", "U02BEN"}
    blocks = first[0].params["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Weekly news number 1", "emoji": True},
    }
    assert "*part 1*" in blocks[1]["text"]["text"]
    clock.set(utc(5, 15, 0))  # 10:00 in New York
    slack.wait_for("chat.postMessage", 3)
    for day in (6, 7, 8):
        clock.set(utc(day, 15, 0))
        settled(server, db_url, clock)
    posts = posts_to(slack, support)
    assert len(posts) == 9  # the fourth update of the week is held
    assert not posts_to(slack, {"U04DAN", "U05EVA"})  # sales got nothing
    assert all("number 4" not in c.params["text"] for c in posts)

    clock.set(utc(9, 14, 0))  # Friday 15:00 in Berlin and Budapest: the digest
    eventually(lambda: len(posts_to(slack, support)) == 11)
    clock.set(utc(9, 20, 0))  # 15:00 in New York
    eventually(lambda: len(posts_to(slack, support)) == 12)
    digests = posts_to(slack, support)[-3:]
    assert all("Weekly news number 4" in c.params["text"] for c in digests)
    assert {c.params["channel"] for c in digests} == support

    # a reaction, retried twice by Slack, counts once
    ts = run_db(db_url, lambda s: _first_ts(s, "U01ANNA"))
    reaction = {
        "type": "reaction_added",
        "user": "U01ANNA",
        "reaction": "tada",
        "item": {"type": "message", "channel": "D01ANNA", "ts": ts},
        "event_ts": f"{time.time():.6f}",
    }
    for retry in (None, 1, 2):
        r = send_event(server.url, SECRET, reaction, event_id="EvReact1", retry=retry)
        assert r.status_code == 200
    # each retry was answered after it was processed (200 comes last): the count is final
    assert run_db(db_url, _engagement) == [("reaction", "tada")]

    # "Got it" on that message: recorded, and a short thanks in its thread in Anna's language
    anna_first = next(c for c in first if c.params["channel"] == "U01ANNA")
    got_it = next(
        e
        for b in anna_first.params["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if '"got_it"' in e.get("value", "")
    )
    assert got_it["text"]["text"] == "Got it"  # the update is written in English
    r = send_action(server.url, SECRET, _block_action(got_it, "U01ANNA", "D01ANNA", ts))
    assert r.status_code == 200
    thanks = slack.wait_for("chat.postMessage", 1, where=lambda c: c.params.get("thread_ts") == ts)
    assert thanks[0].params["text"] == "Notiert, danke!"
    assert ("click", "got_it") in run_db(db_url, _engagement)

    # Anna asks in a DM what's new (in German)
    send_event(server.url, SECRET, slack_dm("Was gibt's Neues?", user="U01ANNA", channel="D01ANNA"))
    reply = slack.wait_for(
        "chat.postMessage",
        1,
        where=lambda c: (
            c.params.get("channel") == "D01ANNA" and "Neuigkeiten" in c.params.get("text", "")
        ),
    )
    assert "Weekly news number 3" in reply[0].params["text"]


def _block_action(element: dict[str, Any], user: str, channel: str, ts: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "message": {"ts": ts},
        "trigger_id": f"trig-{time.time()}",
        "team": {"id": "T1"},
        "actions": [
            {
                "type": "button",
                "action_id": element["action_id"],
                "value": element["value"],
                "text": element["text"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


async def _people(s: AsyncSession) -> dict[str, tuple[Any, ...]]:
    rows = (await s.execute(select(Employee).where(Employee.active))).scalars()
    return {e.slack_user_id or "": (e.department, e.title, e.language, e.timezone) for e in rows}


async def _first_ts(s: AsyncSession, address: str) -> str:
    q = select(OutboxMessage.platform_message_id).where(OutboxMessage.address == address)
    return str((await s.execute(q.order_by(OutboxMessage.id).limit(1))).scalar_one())


async def _engagement(s: AsyncSession) -> list[tuple[str, str | None]]:
    q = select(EngagementEvent.kind, EngagementEvent.value).order_by(EngagementEvent.id)
    return [(k, v) for k, v in (await s.execute(q)).all()]
