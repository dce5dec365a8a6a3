"""``concierge events import``: every bad line named as file:line before anything is stored;
``--skip-invalid`` imports the good ones; importing a file again stores nothing twice.
``concierge lifecycle sweep``: runs on a migrated database; one it cannot open is one line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()


def _event(ident: str, at: str = "2026-03-01T10:00:00Z") -> str:
    return json.dumps({"id": ident, "type": "signed_up", "user_id": "u1", "occurred_at": at})


def _import(path: Path, db_url: str, *more: str) -> tuple[int, str]:
    r = runner.invoke(app, ["events", "import", str(path), "--database-url", db_url, *more])
    return r.exit_code, r.output


def test_bad_lines_are_named_and_nothing_is_imported(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "events.jsonl"
    lines = [
        _event("e1"),
        "",
        "{not json",
        "[1, 2]",
        json.dumps({"id": "e2", "type": "signed_up", "occurred_at": "2026-03-01T10:00:00Z"}),
        _event("e3", at="2999-01-01T00:00:00Z"),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = _import(path, db_url)
    assert code == 1
    assert f"{path}:3: not JSON" in out
    assert f"{path}:4: an event is a JSON object" in out
    assert f"{path}:5: user_id: " in out
    assert f"{path}:6: occurred_at: is in the future" in out
    assert f"{path}:1:" not in out
    assert "4 bad line(s): nothing imported" in out


def test_skip_invalid_imports_the_good_lines_once(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "events.jsonl"
    future = _event("e3", at="2999-01-01T00:00:00Z")
    path.write_text("\n".join([_event("e1"), "{not json", _event("e2"), future]) + "\n", "utf-8")
    code, out = _import(path, db_url, "--skip-invalid")
    assert code == 0, out
    assert f"{path}:4: occurred_at: is in the future" in out
    # the line named as bad is not imported either (an event from the future is refused)
    assert "2 events imported, 0 already known" in out
    code, out = _import(path, db_url, "--skip-invalid")
    assert code == 0, out
    assert "0 events imported, 2 already known" in out


def test_sweep_runs_on_a_migrated_database_and_names_a_database_it_cannot_open(
    tmp_path: Path, db_url: str
) -> None:
    r = runner.invoke(app, ["lifecycle", "sweep", "--database-url", db_url])
    assert r.exit_code == 0, r.output
    assert "done in" in r.output
    missing = f"sqlite+aiosqlite:///{tmp_path}/no-such-folder/x.db"
    r = runner.invoke(app, ["lifecycle", "sweep", "--database-url", missing])
    assert r.exit_code == 2
    assert "error: database folder" in r.output
