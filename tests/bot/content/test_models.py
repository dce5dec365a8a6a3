"""bot.content.models: the Pydantic models of content files, checked through Doc.validate so
that every problem names file:line and the field path."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.content.loader import ContentError, Doc
from bot.content.models import ShopFile, UpdateFile
from bot.internal.content import load_file
from bot.lifecycle.config import load as load_lifecycle
from bot.shop import load_shop
from bot.storage.models import Contact
from tests.conftest import REPO


def check(tmp_path: Path, text: str, model: type[ShopFile] | type[UpdateFile]) -> ContentError:
    path = tmp_path / "f.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as e:
        Doc.load(path).validate(model)
    return e.value


def test_the_shipped_shop_file_reads() -> None:
    shop = load_shop(REPO)
    assert shop.registers == {"de": "informal"}
    assert shop.suggestions[0] == "faq/shipping"


def test_an_empty_section_is_a_missing_one(tmp_path: Path) -> None:
    doc = Doc.parse("support:\nlanguages:\n", tmp_path / "shop.yml")
    assert doc.validate(ShopFile) == ShopFile()


def test_shop_holidays_are_dates(tmp_path: Path) -> None:
    doc = Doc.parse("support:\n  holidays: [2026-12-24, 2026-12-31]\n", tmp_path / "shop.yml")
    assert doc.validate(ShopFile).support.holidays == [date(2026, 12, 24), date(2026, 12, 31)]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("languages:\n  de: {register: casual}\n", 2, "languages.de.register: Input should be"),
        ("support:\n  timezone: Mars/Base\n", 2, "support.timezone: unknown time zone"),
        ("support:\n  holidays:\n    - 2026-12-24\n    - 2026-13-01\n", 4, "support.holidays.1"),
        ("greting: {response: utter_hi}\n", 1, "greting: unknown key 'greting'"),
        ("greeting:\n  suggestions: faq/returns\n", 2, "greeting.suggestions: Input should be"),
    ],
)
def test_shop_problems_name_line_and_field(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    e = check(tmp_path, text, ShopFile)
    assert e.line == line and e.problem.startswith(problem), str(e)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            "title: x\nbody: y\naudience: all\npriority: urgent\n",
            4,
            "priority: Input should be 'high'",
        ),
        ("title: x\nbody: y\naudience: all\nimportant: maybe\n", 4, "important: Input should be"),
        ("title: x\nbody: y\naudience: all\ngoal: fame\n", 4, "goal: unknown goal 'fame'"),
        ("title: ' '\nbody: y\naudience: all\n", 1, "title: must be a non-empty text"),
        ("title: x\naudience: all\n", 1, "'body' is missing"),
        (
            "title: x\nbody: y\naudience: all\npulse:\n  question: Q\n  options: [a]\n",
            6,
            "pulse.options: List should have at least 2 items",
        ),
        (
            "title: x\nbody: y\naudience: all\nid: Big Launch\n",
            4,
            "id: 'big launch': use lower-case",
        ),
    ],
)
def test_update_problems_name_line_and_field(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    e = check(tmp_path, text, UpdateFile)
    assert e.line == line and e.problem.startswith(problem), str(e)


def test_an_update_file_reads_into_its_spec(tmp_path: Path) -> None:
    path = tmp_path / "launch.yml"
    path.write_text(
        "title: Launch\naudience: [department:support, department:sales]\ngoal: csat\n"
        "body: {en: Hello, de: Hallo}\nlinks: [https://example.com/a]\n"
        "pulse: How was it?\nmore: Details.\n",
        encoding="utf-8",
    )
    spec = load_file(path)
    assert spec.key == "launch" and spec.goal == "customer_satisfaction"
    assert spec.audience == "department:support, department:sales"
    assert spec.bodies == {"en": "Hello", "de": "Hallo"}
    assert spec.links == [{"title": "https://example.com/a", "url": "https://example.com/a"}]
    assert spec.pulse is not None and spec.pulse.options == ["1", "2", "3", "4", "5"]
    assert spec.more == {"en": "Details."}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("events:\n  bought: {purchase: maybe}\n", 2, "events.bought.purchase: Input should be"),
        ("events:\n  bought:\n    purchse: true\n", 3, "events.bought.purchse: unknown key"),
        ("rfm:\n  frequency: [1, 3, 2, 4]\n", 2, "rfm.frequency: four ascending numbers"),
        ("rfm:\n  monetary: [1, 2, 3]\n", 2, "rfm.monetary: four ascending numbers"),
        ("initial: gone\n", 1, "unknown stage 'gone' (stages: awareness, retention)"),
        ("transitions:\n  - {to: retention}\n", 2, "'on' is missing"),
        (
            "transitions:\n  - {on: paid, to: retention, if: {}}\n",
            2,
            "transitions.0.if: unknown key",
        ),
        (
            "transitions:\n  - on: paid\n    to: retention\n    from: [awareness, retention]\n",
            4,
            "'from' contains the target stage 'retention'",
        ),
        ("inactivity:\n  - {from: awareness, to: retention}\n", 2, "'after' is missing"),
        (
            "inactivity:\n  - from: awareness\n    after: 0d\n    to: retention\n",
            3,
            "'after' must be longer than zero",
        ),
        ("segments:\n  ok: {}\n  bad-name: {}\n", 3, "segment name 'bad-name': letters"),
        ("segments:\n  x: {not: {segment: x}}\n", 2, "segments refer to each other: x -> x"),
        ("followups:\n  greet:\n    - {segment: vip}\n", 3, "'response' is missing"),
        (
            "followups:\n  greet:\n    - response: utter_x\n      purchase_count: 1\n"
            "      stage: gone\n",
            5,
            "unknown stage 'gone'",
        ),
        (
            "followups:\n  greet:\n    - {response: utter_x, purpose: spam}\n",
            3,
            "followups.greet.0.purpose: Input should be 'service' or 'marketing'",
        ),
    ],
)
def test_lifecycle_sections_name_line_and_field(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = tmp_path / "lifecycle.yml"
    path.write_text("stages: [awareness, retention]\n" + text, encoding="utf-8")
    with pytest.raises(ContentError) as e:
        load_lifecycle(path)
    assert e.value.line == line + 1 and e.value.problem.startswith(problem), str(e.value)


def test_lifecycle_sections_read(tmp_path: Path) -> None:
    path = tmp_path / "lifecycle.yml"
    path.write_text(
        "stages: [awareness, retention]\nevents:\n  signed_up:\n  bought: {purchase: true}\n"
        "rfm: {amount_property: total, monetary: [10, 20, 30.5, 40]}\n",
        encoding="utf-8",
    )
    cfg = load_lifecycle(path)
    assert cfg.events["bought"].purchase and cfg.events["signed_up"].activity
    assert cfg.amount_property == "total" and cfg.rfm.monetary == (10, 20, 30.5, 40)
    assert cfg.rfm.frequency == (2, 3, 5, 10)  # the default


def test_lifecycle_entries_read(tmp_path: Path) -> None:
    """A bare ``on`` (YAML 1.1: true), inline follow-up conditions, and a warning for an event
    that ``events:`` does not list."""
    path = tmp_path / "lifecycle.yml"
    path.write_text(
        "stages: [a, b]\nevents: {paid: {purchase: true}}\ntransitions:\n"
        "  - {on: paid, from: a, to: b}\n  - {on: gifted, to: b}\n"
        "followups:\n  greet:\n    - {stage: a, response: utter_a, purpose: marketing}\n",
        encoding="utf-8",
    )
    cfg = load_lifecycle(path)
    assert cfg.initial == "a" and cfg.stages == {"a": "", "b": ""}
    assert [t.describe() for t in cfg.transitions] == ["on paid: a -> b", "on gifted: * -> b"]
    [warning] = cfg.warnings
    assert (warning.line, warning.severity) == (5, "warning")
    assert warning.message == "event 'gifted' is not listed under events:"
    [followup] = cfg.followups["greet"]
    assert followup.purpose == "marketing" and cfg.responses() == [("utter_a", 8)]
    assert followup.when.matches(Contact(lifecycle_stage="a"), datetime.now(UTC))
