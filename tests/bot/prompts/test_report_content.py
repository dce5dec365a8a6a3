"""``concierge report prompts --content``: the prompts of a content folder, with no activity
yet too (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from channels.cli import app
from tests.conftest import REPO

runner = CliRunner()


def test_report_lists_the_prompts_of_the_content(sqlite_url: str, tmp_path: Path) -> None:
    r = runner.invoke(app, ["report", "prompts", "--database-url", sqlite_url])
    assert r.exit_code == 0 and "No prompts were sent" in r.output  # nothing known without it
    r = runner.invoke(
        app, ["report", "prompts", "--content", str(REPO), "--database-url", sqlite_url, "--json"]
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert "review_request" in [x["prompt"] for x in rows] and len(rows) >= 8
    assert all(x["sent"] == 0 for x in rows)

    shop = tmp_path / "shop"
    (shop / "flows").mkdir(parents=True)
    (shop / "flows" / "prompts.yml").write_text(
        "prompts:\n  - id: hello_again\n    trigger: {stage: at-risk}\n"
        "    response: utter_prompt_hello\n"
    )
    r = runner.invoke(
        app, ["report", "prompts", "--content", str(shop), "--database-url", sqlite_url]
    )
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[:3] == [
        "hello_again",
        "  sent        0  (-)",
        "  skipped     0  (-)",
    ]
    r = runner.invoke(
        app,
        [
            "report",
            "prompts",
            "--content",
            str(shop),
            "--database-url",
            sqlite_url,
            "--prompt",
            "x",
        ],
    )
    assert r.exit_code == 2 and "no prompt 'x' in" in r.output and "hello_again" in r.output


def test_report_on_a_database_never_migrated_is_one_clear_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["report", "prompts", "--database-url", f"sqlite:///{tmp_path}/new.db"])
    assert r.exit_code == 2
    assert "no such table" in r.output and "concierge db upgrade" in r.output
    assert len(r.output.strip().splitlines()) == 1
