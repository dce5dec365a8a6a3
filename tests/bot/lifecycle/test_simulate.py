"""``concierge simulate`` runs the prompt scheduler on its clock: prompts sent and skipped (with
the reason), in the person's language (issue 18)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from bot.lifecycle.simulate import format_timeline, read_events, simulate
from bot.settings import Settings
from channels.cli import app

EVENTS = """\
{"type": "purchased", "occurred_at": "2026-03-02T09:00:00+01:00", "properties": {"amount": 89, "language": "de"}}
{"type": "delivered", "occurred_at": "2026-03-04T15:00:00+01:00"}
"""


def timeline(settings: Settings, path: Path, user: str, days: int) -> list[tuple[str, str, str]]:
    entries, _ = asyncio.run(simulate(settings, user, read_events(path, user), days))
    return format_timeline(entries, "Europe/Berlin")


def test_the_review_prompt_at_its_delay_in_the_customers_language(
    tmp_path: Path, sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    events = tmp_path / "anna.jsonl"
    events.write_text(EVENTS)
    rows = timeline(make_settings(sqlite_url), events, "anna", 14)
    assert ("2026-03-04 15:00", "prompt", "review_request scheduled for 2026-03-11 10:00") in rows
    # a week after delivery, at 10:00 local: sent, and the message is the German text
    assert ("2026-03-11 10:00", "prompt", "review_request sent on web") in rows
    [review] = [t for when, kind, t in rows if kind == "message" and when == "2026-03-11 10:00"]
    assert review.startswith("Hallo, deine Brewhaus-Bestellung ist seit einer Woche bei dir.")
    assert "Antworte STOPP" in review and "[Bewertung schreiben]" in review
    # every message of this person is German (the thank-you and the tutorial too)
    messages = [t for _, k, t in rows if k == "message"]
    assert len(messages) >= 4 and messages[0].startswith("Danke für deine Bestellung!")
    assert not any(t.startswith(("Thank", "Hi,", "Hi ", "Your")) for t in messages)


def test_a_skipped_prompt_shows_its_reason(
    tmp_path: Path, sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    events = tmp_path / "ben.jsonl"
    events.write_text(
        EVENTS.replace(', "language": "de"', "")
        + '{"type": "complaint_opened", "occurred_at": "2026-03-06T12:00:00+01:00"}\n'
    )
    rows = timeline(make_settings(sqlite_url), events, "ben", 14)
    assert ("2026-03-11 10:00", "prompt", "review_request skipped: complaint_open") in rows
    assert not any(k == "message" and "review" in t for _, k, t in rows)
    # no language in the events: English
    assert any(k == "message" and t.startswith("Thank") for _, k, t in rows)


def test_the_command_prints_prompts(tmp_path: Path, sqlite_url: str) -> None:
    events = tmp_path / "anna.jsonl"
    events.write_text(EVENTS)
    r = CliRunner().invoke(
        app,
        ["simulate", "--user", "anna", "--events", str(events), "--days", "14"],
        env={
            "COLUMNS": "300",
            "CONCIERGE_DATABASE_URL": sqlite_url,
            "CONCIERGE_MODEL_DIR": str(tmp_path / "m"),
        },
    )
    assert r.exit_code == 0, r.output
    assert "review_request sent on web" in r.output and "Hallo, deine Brewhaus" in r.output
    assert "times in Europe/Berlin" in r.output
