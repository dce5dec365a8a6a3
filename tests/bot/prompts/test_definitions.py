"""The prompts file: the shipped one is valid, broken ones fail with file:line and the problem."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from bot.content.loader import ContentError
from bot.prompts.definitions import (
    Trigger,
    check_responses,
    check_stages,
    load_prompts,
)
from bot.responses import Responses
from tests.conftest import REPO

GOOD = """\
prompts:
  - id: ok
    trigger: {event: delivered}
    response: utter_prompt_review
"""


def test_the_demo_prompts_are_valid_with_texts_in_every_language() -> None:
    book = load_prompts(REPO / "flows" / "prompts.yml")
    assert {
        "review_request",
        "descaling_tip",
        "we_miss_you",
        "win_back",
        "nps_survey",
        "referral_ask",
        "reorder_reminder",
        "roast_of_the_month",
    } <= set(book.prompts)
    responses = Responses.from_folder(REPO / "nlu_data")
    assert check_responses(book, responses, ["en", "de", "hu", "sv", "pl"]) == []
    assert book.prompts["review_request"].kind == "review"
    assert book.prompts["we_miss_you"].holdout == 0.1


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("prompts:\n  - id: x\n    trigger: {event: a\n", 4, "YAML syntax"),
        ("promts: []\n", 1, "unknown key 'promts'"),
        (
            GOOD + "  - id: ok\n    trigger: {event: b}\n    response: utter_x\n",
            5,
            "duplicate prompt id",
        ),
        (
            "prompts:\n  - id: Bad-Id\n    trigger: {event: a}\n    response: utter_x\n",
            2,
            "prompt id",
        ),
        ("prompts:\n  - id: x\n    response: utter_x\n", 2, "'trigger' is missing"),
        (
            "prompts:\n  - id: x\n    trigger: {event: a, stage: b}\n    response: utter_x\n",
            3,
            "exactly one of",
        ),
        (
            "prompts:\n  - id: x\n    trigger:\n      event: a\n      delay: soon\n    response: utter_x\n",
            5,
            "not a duration",
        ),
        (
            "prompts:\n  - id: x\n    trigger:\n      event: a\n      at: '25:00'\n    response: utter_x\n",
            5,
            "a local time HH:MM",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {schedule: 'every day'}\n    response: utter_x\n",
            3,
            "not a cron expression",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    purpose: spam\n    response: utter_x\n",
            4,
            "purpose: Input should be 'service' or 'marketing'",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: hello\n",
            4,
            "a response name",
        ),
        ("prompts:\n  - id: x\n    trigger: {event: a}\n", 2, "either 'response' or 'variants'"),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: utter_x\n    holdout: 0.2\n",
            5,
            "needs a goal",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: utter_x\n    holdout: 1.5\n",
            5,
            "holdout: Input should be less than 1",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: utter_x\n    audience:\n      bogus: 1\n",
            6,
            "unknown field 'bogus'",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: utter_x\n    audience:\n      purchase_count: {gte: many}\n",
            6,
            "needs a number",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {segment: vips}\n    response: utter_x\n",
            3,
            "unknown segment 'vips'",
        ),
        (
            "prompts:\n  - id: x\n    kind: review\n    trigger: {nps: promoter}\n    response: utter_x\n",
            4,
            "review gating",
        ),
        (
            "prompts:\n  - id: x\n    kind: review\n    trigger: {event: a}\n    response: utter_x\n    audience:\n      attributes.nps_score: {gte: 9}\n",
            7,
            "review gating",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: utter_x\n    reentry: sometimes\n",
            5,
            "reentry",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: utter_x\n    colour: red\n",
            5,
            "unknown key 'colour'",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    variants:\n      - {id: a, response: utter_x}\n      - {id: a, response: utter_y}\n",
            6,
            "duplicate variant id",
        ),
        (
            "prompts:\n  - id: x\n    trigger: {event: a}\n    response: utter_x\n    suppress: [mood]\n",
            5,
            "suppress.0: Input should be 'handoff', 'complaint' or 'low_csat'",
        ),
        (
            "prompts:\n  - id: x\n    trigger:\n      stage: a\n      where: {b: 1}\n    response: utter_x\n",
            5,
            "event triggers only",
        ),
    ],
)
def test_broken_files_name_file_line_and_problem(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as e:
        load_prompts(path)
    assert e.value.line == line, str(e.value)
    assert problem in e.value.problem
    assert str(e.value).startswith(f"{path}:{line}: ")


def test_missing_texts_are_reported_per_language(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(GOOD.replace("utter_prompt_review", "utter_prompt_nowhere"), encoding="utf-8")
    book = load_prompts(path)
    [problem] = check_responses(book, Responses.from_folder(REPO / "nlu_data"), ["en", "de"])
    assert problem.startswith(f"{path}:2: ") and "missing in en, de" in problem


def test_stage_names_are_checked_against_the_lifecycle_file(tmp_path: Path) -> None:
    (tmp_path / "lifecycle.yml").write_text(
        "stages:\n  retention: {}\n  at-risk: {}\n", encoding="utf-8"
    )
    path = tmp_path / "prompts.yml"
    path.write_text(
        "prompts:\n  - id: x\n    trigger: {stage: at_risk}\n    response: utter_x\n",
        encoding="utf-8",
    )
    [problem] = check_stages(load_prompts(path), tmp_path / "lifecycle.yml")
    assert problem.startswith(f"{path}:2: ") and "unknown stage 'at_risk'" in problem
    assert check_stages(load_prompts(REPO / "flows" / "prompts.yml"), tmp_path / "none.yml") == []


def test_validate_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["prompts", "validate"])
    assert result.exit_code == 0 and "prompts OK" in result.output
    bad = tmp_path / "prompts.yml"
    bad.write_text("prompts:\n  - id: x\n    trigger: {event: a}\n", encoding="utf-8")
    monkeypatch.setenv("CONCIERGE_PROMPTS_FILE", str(bad))
    result = runner.invoke(app, ["prompts", "validate"])
    assert result.exit_code == 1 and f"{bad}:2:" in result.output


@pytest.mark.parametrize(
    ("start", "delay", "at", "tz", "want_local"),
    [
        # 7 days after, at 10:00 on that local day
        (
            datetime(2026, 1, 5, 15, tzinfo=UTC),
            "7d",
            "10:00",
            "Europe/Berlin",
            datetime(2026, 1, 12, 10),
        ),
        # no delay, but the local time has passed: the next day
        (
            datetime(2026, 1, 5, 15, tzinfo=UTC),
            "0d",
            "10:00",
            "Europe/Berlin",
            datetime(2026, 1, 6, 10),
        ),
        # a delay in hours: the first 10:00 after it
        (datetime(2026, 1, 5, 23, tzinfo=UTC), "12h", "10:00", "UTC", datetime(2026, 1, 7, 10)),
        # across the spring DST change in Berlin (29 March 2026)
        (
            datetime(2026, 3, 25, 12, tzinfo=UTC),
            "7d",
            "10:00",
            "Europe/Berlin",
            datetime(2026, 4, 1, 10),
        ),
    ],
)
def test_due_times(start: datetime, delay: str, at: str, tz: str, want_local: datetime) -> None:
    from bot.content.durations import parse_duration

    t = Trigger(event="x", delay=parse_duration(delay), at=time.fromisoformat(at))
    due = t.due(start, ZoneInfo(tz))
    assert due.astimezone(ZoneInfo(tz)).replace(tzinfo=None) == want_local
    assert due - start >= timedelta(0)


def test_a_time_unquoted_in_yaml_is_a_time_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(
        textwrap.dedent(
            """\
            prompts:
              - id: x
                trigger: {event: a, at: 10:30}
                response: utter_x
            """
        ),
        encoding="utf-8",
    )
    assert load_prompts(path).prompts["x"].trigger.at == time(10, 30)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("prompts: []\nsuppression:\n  complaint:\n    opne: [a]\n", 4, "unknown key 'opne'"),
        ("prompts: []\nsuppression:\n  complaint:\n    open: [1]\n", 4, "valid string"),
        ("prompts: {id: x}\n", 1, "valid list"),
    ],
)
def test_the_file_model_names_file_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as e:
        load_prompts(path)
    assert e.value.line == line and problem in e.value.problem, str(e.value)
