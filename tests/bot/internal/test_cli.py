"""``concierge internal ...`` from the command line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from typer.testing import CliRunner

from channels.cli import app
from tests.bot.internal.conftest import content_folder

runner = CliRunner()

PEOPLE_CSV = """\
email,name,department,title,language,timezone,joined_at,slack_user_id
anna@example.com,Anna Berg,Support,Agent,de,Europe/Berlin,2023-04-01,U01ANNA
ben@example.com,Ben Kovacs,Support,Lead,hu,Europe/Budapest,2025-12-20,U02BEN
dan@example.com,Dan Nowak,Sales,Account manager,pl,Europe/Warsaw,2024-02-01,U04DAN
"""


def invoke(content: Path, db: str, *args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["internal", *args, "--content", str(content), "--database-url", db])
    return r.exit_code, r.stdout, r.stderr


def make_content(tmp_path: Path, calendar: str) -> Path:
    root = content_folder(tmp_path / "content")
    (root / "updates" / "calendar.yml").write_text(textwrap.dedent(calendar), encoding="utf-8")
    return root


def test_calendar_prints_the_month_with_holidays_and_updates(
    tmp_path: Path, sqlite_url: str
) -> None:
    root = make_content(
        tmp_path,
        """
        timezone: Europe/Berlin
        dates:
          - {date: 2026-01-06, kind: holiday, title: Epiphany}
          - {date: 2026-01-20, kind: launch, title: Spring collection}
        """,
    )
    (root / "updates" / "kickoff.md").write_text(
        "---\ntitle: Kick-off\naudience: everyone\nschedule: 2026-01-06 10:00\n---\nHi\n"
    )
    code, out, err = invoke(root, sqlite_url, "calendar", "--month", "2026-01")
    assert code == 0, err
    assert "January 2026" in out
    assert " 6H*" in out and "20L" in out and "10- " in out  # Saturday the 10th: a day off
    assert "2026-01-06 holiday  Epiphany" in out
    assert "2026-01-06 update   10:00 local kickoff -> everyone" in out
    assert "deferred to the next working day" in out


def test_sync_csv_preview_send_and_report(tmp_path: Path, sqlite_url: str) -> None:
    root = make_content(
        tmp_path,
        "working_hours: '00:00-24:00'\nworking_days: [mon, tue, wed, thu, fri, sat, sun]\n",
    )
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE_CSV, encoding="utf-8")
    code, out, err = invoke(root, sqlite_url, "sync", "--csv", str(people), "--no-slack")
    assert code == 0, err
    assert "3 new" in out

    code, out, err = invoke(root, sqlite_url, "audience", "department:support")
    assert code == 0, err
    assert "reaches 2 employee(s)" in out and "Anna Berg" in out and "Dan" not in out

    code, out, err = invoke(
        root,
        sqlite_url,
        "audience",
        "support-leads",
        "--save",
        "support-leads",
        "--csv",
        str(people),
    )
    assert code == 0, err
    assert "audience:support-leads reaches 3" in out

    code, out, err = invoke(
        root,
        sqlite_url,
        "send",
        "--title",
        "Coffee machine fixed",
        "--text",
        "The **kitchen** machine works again.",
        "--audience",
        "department:support",
    )
    assert code == 0, err
    assert ": 2 queued, 0 held" in out

    code, out, err = invoke(root, sqlite_url, "report", "--by", "department")
    assert code == 0, err
    assert "audience department:support: 2 planned" in out
    assert "reached 2 (sent 2, in a digest 0)" in out
    assert "Support" in out
    assert "Slack has no read receipts" in out

    code, out, err = invoke(root, sqlite_url, "report", "--by", "goal")
    assert code == 0, err
    assert "engagement             updates   1  reached     2  engaged     0 (0%)" in out


def test_bad_input_is_one_clear_line(tmp_path: Path, sqlite_url: str) -> None:
    root = make_content(tmp_path, "timezone: Europe/Berlin\n")
    (root / "updates" / "oops.md").write_text("---\ntitle: Oops\naudience: nobody\n---\nx\n")
    code, _, err = invoke(root, sqlite_url, "list")
    assert code == 1
    assert f"{root / 'updates' / 'oops.md'}:3: unknown audience 'nobody'" in err

    bad = tmp_path / "bad.csv"
    bad.write_text("email,joined_at\na@example.com,2026-01-01\nb@example.com,someday\n")
    code, _, err = invoke(root, sqlite_url, "sync", "--csv", str(bad), "--no-slack")
    assert code == 2 and err.strip() == f"error: {bad}:3: joined_at 'someday' is not a date"

    code, _, err = invoke(root, sqlite_url, "schedule", "missing-key", "--at", "2026-01-05 10:00")
    assert code == 2 and "no update 'missing-key'" in err
    code, _, err = invoke(root, sqlite_url, "schedule", "x", "--at", "tomorrow")
    assert code == 2 and "use 'YYYY-MM-DD HH:MM'" in err
    code, _, err = invoke(root, sqlite_url, "audience", "departmnt:x")
    assert code == 2 and "unknown audience 'departmnt:x'" in err
