"""bot.content.loader: one YAML reader for every content file; problems name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from bot.content.loader import ContentError, Doc, Problem, compose, walk_files


def write(tmp_path: Path, text: str, name: str = "x.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_of_keys_and_items(tmp_path: Path) -> None:
    doc = Doc.load(write(tmp_path, "flows:\n  a:\n    steps:\n      - say: hi\n      - ask: x\n"))
    assert doc.data == {"flows": {"a": {"steps": [{"say": "hi"}, {"ask": "x"}]}}}
    assert doc.line(("flows", "a")) == 2
    assert doc.line(("flows", "a", "steps", 1)) == 5
    assert doc.line(("flows", "a", "steps", 1, "ask")) == 5
    assert doc.line(("flows", "a", "steps", 7, "nothing")) == 3  # the nearest enclosing part
    assert doc.key_line(("flows", "a", "steps")) == 3
    assert doc.get(("flows", "a", "steps", 0, "say")) == "hi"
    assert doc.get(("flows", "b")) is None


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ContentError) as e:
        Doc.load(path)
    assert e.value.path == str(path) and e.value.line == 3
    assert str(e.value).startswith(f"{path}:3: YAML syntax: ")


def test_a_duplicate_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a:\n  x: 1\n  y: 2\n  x: 3\n")
    with pytest.raises(ContentError, match=r":4: duplicate key 'x'"):
        Doc.load(path)


def test_dates_and_times_stay_text(tmp_path: Path) -> None:
    doc = Doc.load(write(tmp_path, "day: 2026-12-24\nbad: 2026-13-01\nat: 10:00\nn: 7\nf: 1.5\n"))
    assert doc.data == {"day": "2026-12-24", "bad": "2026-13-01", "at": "10:00", "n": 7, "f": 1.5}


def test_an_unreadable_file_is_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="cannot read"):
        Doc.load(tmp_path / "missing.yml")
    binary = tmp_path / "b.yml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ContentError, match="cannot read"):
        Doc.load(binary)


def test_front_matter_lines_count_from_the_file_start(tmp_path: Path) -> None:
    path = tmp_path / "u.md"
    doc = Doc.parse("title: x\naudience: all\n", path, offset=1)  # after a first '---' line
    assert doc.line(("audience",)) == 3
    with pytest.raises(ContentError, match=r"u.md:3: YAML syntax"):
        Doc.parse("title: x\naudience: a: b\n", path, offset=1)


def test_an_empty_file_is_none(tmp_path: Path) -> None:
    assert Doc.load(write(tmp_path, "# only a comment\n")).data is None
    assert compose("", tmp_path / "e.yml") is None


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int = 0


class Items(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item]


def test_validate_names_line_and_field_path(tmp_path: Path) -> None:
    path = write(tmp_path, "items:\n  - name: a\n  - name: b\n    count: many\n")
    with pytest.raises(ContentError) as e:
        Doc.load(path).validate(Items)
    assert e.value.line == 4
    assert e.value.problem.startswith("items.1.count: Input should be a valid integer")


def test_validate_reports_an_unknown_key_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "items:\n  - name: a\n    cuont: 2\n")
    with pytest.raises(ContentError, match=r":3: items\.0\.cuont: unknown key"):
        Doc.load(path).validate(Items)


def test_validate_a_part(tmp_path: Path) -> None:
    doc = Doc.load(write(tmp_path, "top:\n  name: a\n  count: 2\n"))
    assert doc.validate(Item, ("top",)) == Item(name="a", count=2)


def test_errors_and_problems_print_as_file_line(tmp_path: Path) -> None:
    e = ContentError(tmp_path / "f.yml", 7, "bad")
    assert str(e) == f"{tmp_path / 'f.yml'}:7: bad"
    assert str(e.as_problem("warning")) == f"{tmp_path / 'f.yml'}:7: warning: bad"
    assert str(ContentError("f.yml", None, "bad")) == "f.yml: bad"
    assert str(Problem("f.yml", None, "gone")) == "f.yml: error: gone"


def test_walk_files_is_sorted_and_skips_folders(tmp_path: Path) -> None:
    for name in ("b.yml", "a.yml", "c.txt"):
        write(tmp_path, "x: 1\n", name)
    (tmp_path / "d.yml").mkdir()
    assert [p.name for p in walk_files(tmp_path)] == ["a.yml", "b.yml"]
    assert list(walk_files(tmp_path / "none")) == []
