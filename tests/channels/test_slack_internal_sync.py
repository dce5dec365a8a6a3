"""``concierge internal sync`` and audience previews against a fake Slack Web API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.internal.models import Employee
from bot.storage.db import Database
from channels.cli import app
from tests.bot.internal.conftest import content_folder
from tests.fakes.slack_directory import FakeSlackDirectory

runner = CliRunner()


@pytest.fixture
def slack() -> Iterator[FakeSlackDirectory]:
    fake = FakeSlackDirectory(page_size=2).start()
    # custom profile fields only come with users.profile.get, as in Slack
    for uid, name, dept, start in [
        ("U1", "Anna Berg", "Support", "2025-12-20"),
        ("U2", "Ben Kovacs", "Support", "2021-03-01"),
        ("U3", "Cara Lind", "Sales", "2025-12-28"),
        ("U4", "Dan Nowak", "Engineering", "2019-05-05"),
        ("U5", "Eva Sand", "Sales", "2020-01-01"),
    ]:
        fake.add_user(
            uid,
            name,
            title="Agent",
            fields={"XfDEPT": dept, "XfSTART": start},
            fields_in_list=False,
        )
    fake.add_user("UB", "Deploy Bot", is_bot=True)
    fake.usergroups = [{"id": "S1", "handle": "oncall", "users": ["U2", "U4"]}]
    fake.channels = {"C0SUPPORT": ["U1", "U2", "U5", "UB"]}
    yield fake
    fake.stop()


def test_sync_maps_profile_fields_and_audiences_use_slack(
    slack: FakeSlackDirectory, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONCIERGE_SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("CONCIERGE_SLACK_API_URL", slack.api_url)
    monkeypatch.setenv(
        "CONCIERGE_INTERNAL_PROFILE_FIELDS",
        json.dumps({"department": "XfDEPT", "title": "title", "joined_at": "XfSTART"}),
    )
    monkeypatch.setenv("CONCIERGE_INTERNAL_FETCH_CUSTOM_FIELDS", "true")
    content_folder(tmp_path / "c")

    def cli(*args: str) -> str:
        r = runner.invoke(
            app, ["internal", *args, "--content", str(tmp_path / "c"), "--database-url", sqlite_url]
        )
        assert r.exit_code == 0, r.stderr
        return r.stdout

    out = cli("sync")
    assert "slack: 5 new" in out
    assert len(slack.calls_to("users.list")) == 3  # three pages of two
    assert len(slack.calls_to("users.profile.get")) == 5
    out = cli("audience", "department:support")
    assert "reaches 2 employee(s)" in out and "Anna Berg" in out and "Ben Kovacs" in out
    assert asyncio.run(_joined(sqlite_url, "U1")) == datetime(2025, 12, 20, tzinfo=UTC)
    out = cli("audience", "group:oncall")
    assert "reaches 2" in out and "Ben Kovacs" in out and "Dan Nowak" in out
    out = cli("audience", "channel:C0SUPPORT, -department:sales")
    assert "reaches 2" in out and "Eva" not in out
    assert slack.calls_to("conversations.members")

    # a person leaves the workspace: the next sync deactivates them
    slack.users["U5"]["deleted"] = True
    out = cli("sync")
    assert "1 deactivated" in out
    assert "reaches 1" in cli("audience", "department:sales")


async def _joined(url: str, slack_id: str) -> datetime | None:
    from sqlalchemy import select

    db = Database(url)
    try:
        async with db.session() as s:
            q = select(Employee.joined_at).where(Employee.slack_user_id == slack_id)
            return (await s.execute(q)).scalar_one()
    finally:
        await db.dispose()
