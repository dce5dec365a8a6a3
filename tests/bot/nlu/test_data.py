"""Rasa 3.x training data: edge cases, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.data import ContentError, load_content, load_nlu_file, parse_annotated
from bot.nlu.validate import validate


def write(tmp_path: Path, text: str, name: str = "en/nlu.yml") -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_comments_unicode_entities_synonyms_regex_lookup(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """version: "3.1"
nlu:
# a comment line
- intent: faq/shipping
  examples: |
    - Do you ship to [Łódź](city)?
    # a comment inside the block
    - Szállítotok [Budapestre]{"entity": "city", "value": "Budapest"}?
    - ship to [NYC](city:New York)
- synonym: New York
  examples: |
    - big apple
- regex: order_id
  examples: |
    - \\b\\d{6}\\b
- lookup: city
  examples: |
    - Oslo
    - Zürich
""",
    )
    d = load_nlu_file(p, "en")
    texts = [e.text for e in d.examples]
    assert texts == ["Do you ship to Łódź?", "Szállítotok Budapestre?", "ship to NYC"]
    first = d.examples[0]
    assert first.line == 6
    assert (
        first.entities[0].value == "Łódź"
        and first.text[first.entities[0].start : first.entities[0].end] == "Łódź"
    )
    assert d.examples[1].entities[0].value == "Budapest"
    assert d.examples[2].entities[0].value == "New York"
    assert d.synonyms["big apple"] == "New York" and d.synonyms["budapestre"] == "Budapest"
    assert d.regexes["order_id"] == [r"\b\d{6}\b"]
    assert d.lookups["city"] == ["Oslo", "Zürich"]


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n  - bad: [unclosed\n',
    )
    with pytest.raises(ContentError) as e:
        load_nlu_file(p, "en")
    assert str(e.value).startswith(f"{p}:6: YAML syntax")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("- intent: greet\n", 3, "has no examples"),
        ("- intent: greet\n  examples: |\n    hi there\n", 5, "must start with '- '"),
        (
            '- intent: greet\n  examples: |\n    - [broken]{"value": 1}\n',
            5,
            'needs an "entity" name',
        ),
        ("- regex: x\n  examples: |\n    - ([a-z\n", 5, "does not compile"),
        ("- intent: a\n  synonym: b\n  examples: |\n    - x\n", 3, "exactly one of"),
    ],
)
def test_bad_entries_name_their_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    p = write(tmp_path, 'version: "3.1"\nnlu:\n' + body)
    with pytest.raises(ContentError) as e:
        load_nlu_file(p, "en")
    assert e.value.line == line and message in e.value.problem


def test_annotation_forms() -> None:
    assert parse_annotated("plain") == ("plain", ())
    text, ents = parse_annotated('[a](x) and [b]{"entity": "y", "role": "from"}')
    assert text == "a and b" and [(e.entity, e.role) for e in ents] == [("x", None), ("y", "from")]


def test_validate_reports_duplicates_conflicts_and_missing_answers(tmp_path: Path) -> None:
    write(
        tmp_path,
        'version: "3.1"\nnlu:\n- intent: faq/a\n  examples: |\n    - same text\n    - Same Text\n'
        "- intent: faq/b\n  examples: |\n    - same text\n",
    )
    write(tmp_path, 'version: "3.1"\nresponses:\n  utter_faq/a:\n  - text: A\n', "en/responses.yml")
    problems = [str(p) for p in validate(tmp_path)]
    assert any(":6: warning: duplicate example" in p for p in problems)
    assert any(":9: error: example 'same text' is under 'faq/b' and 'faq/a'" in p for p in problems)
    assert any("FAQ topic 'faq/b' has no response 'utter_faq/b' in en" in p for p in problems)


def test_shipped_demo_content_is_valid() -> None:
    repo = Path(__file__).resolve().parents[3]
    assert [p for p in validate(repo / "nlu_data") if p.severity == "error"] == []
    assert set(load_content(repo / "nlu_data")) == {"en", "de", "hu", "sv", "pl"}
