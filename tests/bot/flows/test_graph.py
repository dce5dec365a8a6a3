"""``concierge flows graph FLOW --lang LANG``: the texts a customer sees, not response names
(issue 23), run as the installed command line runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from channels.cli import app
from tests.conftest import REPO

runner = CliRunner()


def graph(*args: str) -> str:
    got = runner.invoke(app, ["flows", "graph", *args, "--content", str(REPO)])
    assert got.exit_code == 0, got.output
    return got.output


def test_graph_shows_each_steps_text_in_the_chosen_language() -> None:
    de = graph("onboarding_tutorial", "--lang", "de")
    assert de.startswith("flowchart TD")
    assert 'unpack{{"ask Pack alles aus' in de
    assert "utter_tutorial_unpack" not in de
    en = graph("onboarding_tutorial", "--lang", "en")
    assert "utter_tutorial_unpack" not in en and 'unpack{{"ask ' in en
    # the answers on the arrows are the button titles in that language
    welcome = graph("welcome", "--lang", "de")
    arrows = [line for line in welcome.splitlines() if line.startswith("  interest -- ")]
    assert len(arrows) == 3 and not any("utter_" in a for a in arrows), arrows


def test_without_a_language_or_a_text_the_names_stand_in(tmp_path: Path) -> None:
    assert "ask utter_tutorial_unpack" in graph("onboarding_tutorial")
    content = tmp_path / "shop"
    shutil.copytree(REPO / "nlu_data", content / "nlu_data")
    shutil.copytree(REPO / "flows", content / "flows")
    (content / "flows" / "mini.yml").write_text(
        "flows:\n  mini:\n    trigger: {link: mini}\n    steps:\n"
        "      - say: utter_tutorial_intro\n      - say: utter_written_nowhere\n",
        encoding="utf-8",
    )
    got = runner.invoke(app, ["flows", "graph", "mini", "--lang", "sv", "--content", str(content)])
    assert got.exit_code == 0, got.output
    assert 'step_1["say ' in got.output and "utter_tutorial_intro" not in got.output
    assert 'step_2["say utter_written_nowhere"]' in got.output


def test_an_unknown_language_is_a_clear_error() -> None:
    got = runner.invoke(
        app, ["flows", "graph", "onboarding_tutorial", "--lang", "xx", "--content", str(REPO)]
    )
    assert got.exit_code == 2
    assert "no texts in 'xx'" in got.output
