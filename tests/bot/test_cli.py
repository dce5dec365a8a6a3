"""The command line: clear one-line errors, migrations, terminal chat."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from channels.cli import app
from tests.conftest import REPO

runner = CliRunner()


def concierge(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "channels.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=120,
    )


def test_missing_database_folder_is_one_clear_line(tmp_path: Path) -> None:
    r = concierge("db", "upgrade", "--database-url", f"sqlite:///{tmp_path}/nope/x.db")
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == f"error: database folder {tmp_path}/nope does not exist (CONCIERGE_DATABASE_URL)"
    )
    assert "Traceback" not in r.stderr


def test_unwritable_database_is_one_clear_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "x.db").write_text("")
    (ro / "x.db").chmod(0o444)
    if os.access(ro / "x.db", os.W_OK):  # root writes anyway: use a folder in place of the file
        (ro / "x.db").unlink()
        (ro / "x.db").mkdir()
    r = concierge("db", "upgrade", "--database-url", f"sqlite:///{ro}/x.db")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: database ")


def test_invalid_setting_names_the_variable(tmp_path: Path) -> None:
    r = concierge(
        "db",
        "upgrade",
        env={"CONCIERGE_DATABASE_URL": "mysql://x", "CONCIERGE_DEFAULT_TIMEZONE": "Mars/Base"},
    )
    assert r.returncode == 2
    assert "CONCIERGE_DATABASE_URL" in r.stderr and "CONCIERGE_DEFAULT_TIMEZONE" in r.stderr
    assert "Traceback" not in r.stderr


def test_postgres_down_is_one_clear_line() -> None:
    r = concierge("db", "upgrade", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(
        "error: cannot open database postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )


def test_terminal_chat_answers_and_offers_buttons(tmp_path: Path) -> None:
    r = concierge(
        "chat",
        "--content",
        str(REPO),
        "--database-url",
        f"sqlite:///{tmp_path}/c.db",
        stdin="How long is the warranty on the machines?\n1\n\n",
        env={"CONCIERGE_MODEL_DIR": str(tmp_path / "m")},
    )
    assert r.returncode == 0, r.stderr
    assert "2-year warranty" in r.stdout
    assert "[1] Yes" in r.stdout
    assert "Thanks for letting me know" in r.stdout  # pressed button 1


def test_help_lists_commands() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("run", "chat", "db"):
        assert cmd in r.output


def test_content_folder_without_nlu_data_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "shop" / "flows").mkdir(parents=True)
    db = f"sqlite:///{tmp_path}/c.db"
    for args, env in (
        (["run", "--content", str(tmp_path / "shop"), "--database-url", db, "--port", "0"], {}),
        (["chat", "--database-url", db], {"CONCIERGE_CONTENT_DIR": str(tmp_path / "shop")}),
    ):
        r = concierge(*args, env=env, stdin="")
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.strip() == (
            f"error: content folder {tmp_path / 'shop'} has no nlu_data/ folder "
            "(nlu_data/<lang>/nlu.yml and responses.yml: the questions and answers)"
        )
    assert not (tmp_path / "c.db").exists()  # nothing was started


def test_the_default_content_is_the_current_folder_when_it_has_nlu_data(tmp_path: Path) -> None:
    from bot.settings import Settings

    shop = tmp_path / "shop"
    (shop / "nlu_data").mkdir(parents=True)
    here = Path.cwd()
    try:
        os.chdir(shop)
        assert Settings(_env_file=None).content_dir == shop  # type: ignore[call-arg]
        os.chdir(tmp_path)  # no nlu_data/ here: the demo content
        assert (Settings(_env_file=None).content_dir / "nlu_data" / "en" / "nlu.yml").is_file()  # type: ignore[call-arg]
    finally:
        os.chdir(here)
