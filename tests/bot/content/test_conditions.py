"""bot.content.conditions: the one condition language of flows, lifecycle and prompts.

Every condition is checked both ways it runs: in Python (flows, guards) and as SQL (sweeps),
on real rows in SQLite, and a bad condition names its file and line in each file format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.content import conditions
from bot.content.conditions import Always, ConditionError, Env, Facts, parse
from bot.content.loader import ContentError
from bot.lifecycle.config import load as load_lifecycle
from bot.prompts.definitions import load_prompts
from bot.storage.models import Contact

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def person(**fields: Any) -> Contact:
    base: dict[str, Any] = {
        "lifecycle_stage": "retention",
        "purchase_count": 0,
        "monetary_total": Decimal(0),
        "marketing_opt_out": False,
        "attributes": {},
        "created_at": NOW - timedelta(days=400),
        "updated_at": NOW,
    }
    return Contact(**{**base, **fields})


PEOPLE = {
    "anna": person(
        user_id="anna",
        language="de",
        purchase_count=3,
        monetary_total=Decimal("250.00"),
        last_purchase_at=NOW - timedelta(days=10),
        last_activity_at=NOW - timedelta(days=2),
        attributes={"plan": "beans", "cups": 4, "renewal": "2026-02-20T00:00:00"},
    ),
    "ben": person(
        user_id="ben",
        language="en",
        lifecycle_stage="awareness",
        last_activity_at=NOW - timedelta(days=90),
        attributes={"plan": "", "cups": "12"},
    ),
    "cara": person(user_id="cara", language="hu", email="c@example.com", marketing_opt_out=True),
}
SEGMENTS = {"buyer": parse({"purchase_count": {"gte": 1}}, Env())}

CASES: list[tuple[Any, set[str]]] = [
    ({"language": "de"}, {"anna"}),
    ({"language": {"ne": "de"}}, {"ben", "cara"}),
    ({"stage": ["retention", "advocacy"]}, {"anna", "cara"}),
    ({"lifecycle_stage": {"in": ["awareness"]}}, {"ben"}),
    ({"lifecycle_stage": {"not_in": ["awareness"]}}, {"anna", "cara"}),
    ({"purchase_count": {"gte": 2}}, {"anna"}),
    ({"monetary_total": {"gt": 100, "lte": 250}}, {"anna"}),
    ({"marketing_opt_out": True}, {"cara"}),
    ({"email": {"exists": True}}, {"cara"}),
    ({"last_activity_at": {"within": "7d"}}, {"anna"}),
    ({"last_activity_at": {"older_than": "30d"}}, {"ben"}),
    ({"attributes.plan": "beans"}, {"anna"}),
    ({"attributes.plan": {"exists": True}}, {"anna"}),  # an empty text is no value
    ({"attributes.cups": {"gte": 5}}, {"ben"}),  # numbers compare as numbers, even as text
    ({"attributes.renewal": {"within": "30d"}}, {"anna"}),
    ({"rfm.f": {"gte": 2}}, {"anna"}),
    ({"segment": "buyer"}, {"anna"}),
    ({"not": {"segment": "buyer"}}, {"ben", "cara"}),
    ({"any": [{"language": "hu"}, {"purchase_count": {"gte": 3}}]}, {"anna", "cara"}),
    ([{"language": {"in": ["de", "en"]}}, {"purchase_count": 0}], {"ben"}),
    (None, {"anna", "ben", "cara"}),
]


@pytest.fixture(scope="module")
def db() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Contact.metadata.create_all(engine)
    with Session(engine) as s:
        for p in PEOPLE.values():
            s.add(p)
        s.commit()
        yield s
    engine.dispose()


@pytest.mark.parametrize(("raw", "who"), CASES)
def test_python_and_sql_agree(db: Session, raw: Any, who: set[str]) -> None:
    cond = parse(raw, Env(segments=SEGMENTS))
    in_python = {p.user_id for p in PEOPLE.values() if cond.eval(Facts(p, NOW))}
    in_sql = set(db.scalars(select(Contact.user_id).where(cond.sql(NOW))))
    assert in_python == who
    assert in_sql == who


def test_slots_and_event_are_known_inside_a_flow_only() -> None:
    cond = parse({"slots.answer": "great", "event.amount": {"gte": 100}}, Env(in_flow=True))
    facts = Facts(PEOPLE["anna"], NOW, slots={"answer": "great"}, event={"amount": 120})
    assert cond.eval(facts) and cond.python_only
    with pytest.raises(ConditionError, match="only inside a flow"):
        parse({"slots.answer": "great"}, Env())


def test_no_condition_is_always_true_and_falsy() -> None:
    cond = parse(None, Env())
    assert isinstance(cond, Always) and not cond and cond.matches(PEOPLE["ben"], NOW)
    assert parse({"language": "de"}, Env())


def test_tests_lists_every_field() -> None:
    cond = parse({"any": [{"language": "de"}, {"not": {"attributes.nps": 9}}]}, Env())
    assert [t.field for t in cond.tests()] == ["language", "attributes.nps"]
    assert all(isinstance(t, conditions.Test) for t in cond.tests())


@pytest.mark.parametrize(
    ("raw", "at", "message"),
    [
        ({"langauge": "de"}, ("langauge",), "unknown field 'langauge'"),
        ({"purchase_count": {"atleast": 2}}, ("purchase_count", "atleast"), "unknown operator"),
        ({"purchase_count": "two"}, ("purchase_count",), "needs a number"),
        ({"last_seen_at": {"within": "soon"}}, ("last_seen_at", "within"), "not a duration"),
        ({"last_seen_at": {"within": "-3d"}}, ("last_seen_at", "within"), "cannot be negative"),
        ({"language": {"within": "3d"}}, ("language", "within"), "needs a date field"),
        ({"last_seen_at": "2026-01-01"}, ("last_seen_at",), "within/older_than/exists"),
        ({"language": {"in": "de"}}, ("language", "in"), "non-empty list"),
        ({"email": {"exists": "yes"}}, ("email", "exists"), "true or false"),
        ({"any": []}, ("any",), "non-empty list"),
        ({"not": {"segment": "vip"}}, ("not", "segment"), "unknown segment 'vip'"),
        ({"stage": "nowhere"}, ("stage",), "unknown stage 'nowhere'"),
        ({"attributes.": 1}, ("attributes.",), "a plain name"),
        (7, (), "a condition is a mapping"),
    ],
)
def test_bad_conditions_say_what_and_where(raw: Any, at: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConditionError) as e:
        parse(raw, Env(stages=("awareness", "retention")))
    assert message in str(e.value)
    assert e.value.at == at


def test_a_bad_condition_in_prompts_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(
        "segments:\n"
        "  regulars:\n"
        "    purchase_count: {gte: 3}\n"
        "    last_activity_at: {within: a while}\n",
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as e:
        load_prompts(path)
    assert (e.value.path, e.value.line) == (str(path), 4)
    assert "not a duration" in e.value.problem


def test_prompt_segments_may_use_the_whole_language(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(
        "segments:\n"
        "  buyers: {purchase_count: {gte: 1}}\n"
        "  lapsed:\n"
        "    all: [{segment: buyers}, {last_activity_at: {older_than: 60d}}]\n",
        encoding="utf-8",
    )
    lapsed = load_prompts(path).segments["lapsed"]
    assert not lapsed.matches(PEOPLE["anna"], NOW)
    assert not lapsed.matches(PEOPLE["ben"], NOW)  # inactive, but never bought


def test_a_bad_condition_in_lifecycle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "lifecycle.yml"
    path.write_text(
        "stages: [awareness, retention]\nsegments:\n  vip:\n    monetary_total: {gte: lots}\n",
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as e:
        load_lifecycle(path)
    assert e.value.line == 4 and "needs a number" in e.value.problem
