"""``concierge data validate`` says what it checked (issue 18)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from channels.cli import app
from tests.conftest import REPO

runner = CliRunner()


def test_validate_says_what_it_checked(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    for lang, words in (("en", ("hello", "hi")), ("de", ("hallo", "servus"))):
        (shop / "nlu_data" / lang).mkdir(parents=True)
        (shop / "nlu_data" / lang / "nlu.yml").write_text(
            'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n'
            + "".join(f"    - {w}\n" for w in words)
            + "- intent: faq/returns\n  examples: |\n    - returns?\n"
        )
        (shop / "nlu_data" / lang / "responses.yml").write_text(
            'version: "3.1"\nresponses:\n  utter_greet:\n  - text: "Hi!"\n'
            '  utter_faq/returns:\n  - text: "30 days."\n'
        )
    r = runner.invoke(app, ["data", "validate", "--content", str(shop)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        f"checked {shop / 'nlu_data'}: 2 language(s) (de, en)",
        "  de: 2 intents, 3 examples, 2 responses",
        "  en: 2 intents, 3 examples, 2 responses",
        "  all: 2 intents, 6 examples, 4 responses",
        "0 error(s), 0 warning(s)",
    ]


def test_validate_without_content_checks_the_default_content(
    tmp_path: Path, monkeypatch: object
) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.chdir(tmp_path)  # no nlu_data/ here: the demo content is checked
    monkeypatch.delenv("CONCIERGE_CONTENT_DIR", raising=False)
    r = runner.invoke(app, ["data", "validate"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"checked {REPO / 'nlu_data'}: 5 language(s) (de, en, hu, pl, sv)")
