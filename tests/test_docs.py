"""Documentation that cannot drift: the settings reference against the settings models, the
README's command table against the CLI, every CONCIERGE_* name in the docs against the
settings (issue 18)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import typer.main
from sqlalchemy import select
from typer.testing import CliRunner

from bot.docs import env_name, own_fields, setting_models, settings_reference
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Contact
from channels.cli import app
from tests.conftest import REPO, LiveServer, missing

SETTINGS_MD = REPO / "docs" / "settings.md"
REGENERATE = "regenerate it with `concierge docs settings`"
# variables read by the scripts and the tests, not by the product
NOT_SETTINGS = {"CONCIERGE_TEST_POSTGRES_URL", "CONCIERGE_TEST_SETUP"}


def all_setting_names() -> list[str]:
    """Every ``CONCIERGE_*`` variable the settings models read."""
    return [env_name(m, f) for _, _, m in setting_models() for f in own_fields(m)]


def test_every_setting_is_in_the_settings_reference() -> None:
    text = SETTINGS_MD.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(CONCIERGE_[A-Z0-9_]+)` \|", text, re.M))
    missing = [n for n in all_setting_names() if n not in documented]
    assert not missing, f"docs/settings.md lacks {missing}: {REGENERATE}"
    stale = documented - set(all_setting_names())
    assert not stale, f"docs/settings.md names settings that do not exist {stale}: {REGENERATE}"
    assert len(documented) >= 90


def test_the_settings_reference_is_what_the_models_say() -> None:
    # type, default and meaning too: any difference fails
    assert SETTINGS_MD.read_text(encoding="utf-8") == settings_reference(), (
        f"docs/settings.md differs from the settings models: {REGENERATE}"
    )


def test_docs_settings_check_and_write(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "settings.md"
    r = runner.invoke(app, ["docs", "settings", "--out", str(out), "--check"])
    assert r.exit_code == 1 and "out of date" in r.output
    assert runner.invoke(app, ["docs", "settings", "--out", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == settings_reference()
    r = runner.invoke(app, ["docs", "settings", "--out", str(out), "--check"])
    assert r.exit_code == 0 and "up to date" in r.output


def _doc_files() -> list[Path]:
    return [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "flows").glob("*.yml")),
    ]


def test_every_setting_the_docs_name_exists() -> None:
    known = set(all_setting_names()) | NOT_SETTINGS
    for path in _doc_files():
        for name in set(re.findall(r"CONCIERGE_[A-Z0-9_]+", path.read_text("utf-8"))):
            if name.endswith("_"):  # a prefix, as in CONCIERGE_PROMPTS_*
                ok = any(k.startswith(name) for k in known)
            else:
                ok = name in known
            assert ok, f"{path.relative_to(REPO)} names {name}, which is no setting"


def cli_commands() -> set[str]:
    """Every command of the real CLI, as typed: ``concierge db upgrade``."""
    found: set[str] = set()

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            found.add(" ".join(path))
            return
        for name, sub in subs.items():
            if not getattr(sub, "hidden", False):
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), ["concierge"])
    return found


def readme_commands() -> set[str]:
    """The commands of the README's "Command line" table (each row's first cell)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    groups = {c.split()[1] for c in cli_commands() if len(c.split()) > 2}
    out: set[str] = set()
    for row in re.findall(r"^\| (`concierge [^|]*?`[^|]*)\|", section, re.M):
        for span in re.findall(r"`(concierge [^`]+)`", row):
            words = span.split()
            out.add(" ".join(words[:3] if words[1] in groups else words[:2]))
    return out


def test_the_readme_command_table_is_the_cli() -> None:
    cli, readme = cli_commands(), readme_commands()
    assert cli - readme == set(), f"commands missing from the README table: {sorted(cli - readme)}"
    assert readme - cli == set(), f"README names commands the CLI lacks: {sorted(readme - cli)}"
    assert {"concierge internal run-once", "concierge docs settings"} <= readme


def test_prompts_yml_points_to_existing_docs() -> None:
    text = (REPO / "flows" / "prompts.yml").read_text(encoding="utf-8")
    for ref in re.findall(r"docs/[\w.-]+\.md", text):
        assert (REPO / ref).is_file(), f"flows/prompts.yml points to {ref}, which does not exist"


def test_the_prompts_doc_names_every_prompt_setting() -> None:
    text = (REPO / "docs" / "prompts.md").read_text(encoding="utf-8")
    missing = [
        n for n in all_setting_names() if n.startswith("CONCIERGE_PROMPTS_") and n not in text
    ]
    assert not missing, f"docs/prompts.md does not tell {missing}"


def test_the_readme_events_example_works(
    sqlite_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    """The README's curl example, run as written against the live server."""
    if not (shutil.which("curl") and shutil.which("openssl")):
        missing("curl and openssl are needed to run the README's example")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Events API", 1)[1]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    server = start_server(make_settings(sqlite_url, events_secret="readme-secret"))
    assert "http://127.0.0.1:8000/api/v1/events" in script
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("http://127.0.0.1:8000", server.url)],
        env={**os.environ, "CONCIERGE_EVENTS_SECRET": "readme-secret"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["accepted"] == 1 and answer["results"] == [
        {"index": 0, "id": "ev-1", "status": "accepted"}
    ]

    async def stored() -> tuple[str | None, int]:
        db = Database(sqlite_url)
        try:
            async with db.session() as s:
                c = (await s.execute(select(Contact).where(Contact.user_id == "u-42"))).scalar_one()
                return c.language, c.purchase_count
        finally:
            await db.dispose()

    # properties.language is the customer's language from now on
    assert asyncio.run(stored()) == ("de", 1)
    wrong = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("http://127.0.0.1:8000", server.url)],
        env={**os.environ, "CONCIERGE_EVENTS_SECRET": "not-the-secret"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "does not match the body" in wrong.stdout
