"""The FAQ-gap loop's content edits: one line where it belongs, valid files, undone on error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.nlu.data import load_content
from bot.nlu.gaploop import ContentEditError, add_example, add_topic
from bot.nlu.validate import validate

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def content(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "nlu_data", tmp_path / "nlu_data")
    return tmp_path


def test_an_example_goes_after_the_intents_last_one(content: Path) -> None:
    nlu = content / "nlu_data" / "en" / "nlu.yml"
    before = nlu.read_text().splitlines()
    add_example(content, "en", "faq/shipping", "  do you  ship to   Norway? ")
    after = nlu.read_text().splitlines()
    assert len(after) == len(before) + 1
    i = after.index("    - do you ship to Norway?")
    assert after[i - 1] == "    - I live in Sweden, can I order from you?"  # the block's last line
    assert after[:i] + after[i + 1 :] == before  # nothing else changed
    data = load_content(content)["en"]
    assert any(
        e.text == "do you ship to Norway?" and e.intent == "faq/shipping" for e in data.examples
    )
    assert [p for p in validate(content) if p.severity == "error"] == []


def test_a_new_topic_with_its_answer(content: Path) -> None:
    add_topic(content, "de", "parking", "Kann ich bei euch parken?", 'Ja: 4 Plätze "hinterm" Haus.')
    data = load_content(content)["de"]
    assert "faq/parking" in data.intents
    responses = yaml.safe_load((content / "nlu_data" / "de" / "responses.yml").read_text())
    assert responses["responses"]["utter_faq/parking"] == [{"text": 'Ja: 4 Plätze "hinterm" Haus.'}]
    assert [p for p in validate(content) if p.severity == "error"] == []


def test_bad_changes_say_why_and_change_nothing(content: Path) -> None:
    nlu = content / "nlu_data" / "en" / "nlu.yml"
    text = nlu.read_text()
    with pytest.raises(ContentEditError, match="already an example of faq/shipping"):
        add_example(content, "en", "faq/shipping", "Where do you ship to?")
    with pytest.raises(ContentEditError, match="no intent 'faq/nothing'"):
        add_example(content, "en", "faq/nothing", "hello there")
    with pytest.raises(ContentEditError, match="no content in language 'xx'"):
        add_example(content, "xx", "faq/shipping", "hello there")
    with pytest.raises(ContentEditError, match="entity markup"):
        add_example(content, "en", "faq/shipping", "ship [x](y)")
    with pytest.raises(ContentEditError, match="exists already"):
        add_topic(content, "en", "shipping", "a", "b")
    with pytest.raises(ContentEditError, match="topic name"):
        add_topic(content, "en", "Bad Name!", "a", "b")
    assert nlu.read_text() == text
