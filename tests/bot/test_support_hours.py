"""Support hours as content, one source of truth (issue 23): the demo's shop.yml says
Mon-Fri 08:00-18:00 and Sat 10:00-14:00 in Berlin; the handoff promises a person in those hours
in relative words ("today at 08:00"), the "support hours" answer states the same hours, and
``concierge data validate`` warns about an answer that names other hours."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.clock import ManualClock
from bot.handoff.hours import WorkingHours
from bot.i18n import relative_when
from bot.responses import Responses
from bot.runtime import Runtime
from bot.settings import Settings
from bot.types import Inbound
from channels.cli import app
from tests.conftest import REPO

# 2026-12-04 is a Friday; Berlin is UTC+1 in December
FRIDAY_0705_BERLIN = datetime(2026, 12, 4, 6, 5, tzinfo=UTC)
SATURDAY_1500_BERLIN = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)


@pytest.fixture
async def rt(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    """The demo shop's content (with its shop.yml), on a clock the test sets."""
    r = Runtime(make_settings(db_url), clock=ManualClock(FRIDAY_0705_BERLIN), start_worker=False)
    await r.start(migrate=False)
    yield r
    await r.stop()


def msg(text: str, who: str, lang: str = "en") -> Inbound:
    return Inbound(channel="rest", external_id=who, text=text, language=lang)


async def test_friday_0705_in_berlin_a_person_answers_today_at_0800(rt: Runtime) -> None:
    res = await rt.engine.handle(msg("I want to talk to a human", "early"))
    assert "a person will answer today at 08:00" in res.replies[0].text


async def test_saturday_1500_a_person_answers_on_monday(rt: Runtime) -> None:
    assert isinstance(rt.clock, ManualClock)
    rt.clock.set(SATURDAY_1500_BERLIN)
    res = await rt.engine.handle(msg("I want to talk to a human", "late"))
    assert "a person will answer on Monday at 08:00" in res.replies[0].text
    res = await rt.engine.handle(msg("Ich möchte mit einem Menschen sprechen", "spät", "de"))
    assert "am Montag um 08:00" in res.replies[0].text


async def test_the_support_hours_answer_states_the_same_hours(rt: Runtime) -> None:
    res = await rt.engine.handle(msg("What are your support hours?", "hours"))
    assert "Monday–Friday 08:00–18:00, Saturday 10:00–14:00" in res.replies[0].text
    res = await rt.engine.handle(msg("Wann ist euer Kundenservice erreichbar?", "zeiten", "de"))
    assert "Montag–Freitag 08:00–18:00, Samstag 10:00–14:00" in res.replies[0].text


@pytest.mark.parametrize(
    ("lang", "today", "tomorrow", "monday"),
    [
        ("en", "today at 08:00", "tomorrow at 08:00", "on Monday at 08:00"),
        ("de", "heute um 08:00", "morgen um 08:00", "am Montag um 08:00"),
        ("hu", "ma 08:00-kor", "holnap 08:00-kor", "hétfő 08:00-kor"),
        ("sv", "i dag kl. 08:00", "i morgon kl. 08:00", "på måndag kl. 08:00"),
        ("pl", "dzisiaj o 08:00", "jutro o 08:00", "w ten poniedziałek o 08:00"),
    ],
)
def test_relative_wording_in_five_languages(
    lang: str, today: str, tomorrow: str, monday: str
) -> None:
    texts = Responses({})
    hours = WorkingHours.parse("mon-fri 08:00-18:00; sat 10:00-14:00", "Europe/Berlin")

    def say(when: datetime) -> str:
        nxt = hours.next_open(when)
        return relative_when(nxt, when, lang, lambda name, **v: texts.text(name, lang, **v))

    assert say(FRIDAY_0705_BERLIN) == today
    assert say(datetime(2026, 12, 3, 18, 30, tzinfo=UTC)) == tomorrow  # Thursday 19:30
    assert say(SATURDAY_1500_BERLIN) == monday


def test_data_validate_warns_when_an_answer_names_other_hours(tmp_path: Path) -> None:
    content = tmp_path / "shop"
    shutil.copytree(REPO / "nlu_data", content / "nlu_data")
    shutil.copy(REPO / "shop.yml", content / "shop.yml")
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "validate", "--content", str(content)])
    assert ok.exit_code == 0 and "0 warning(s)" in ok.output, ok.output
    de = content / "nlu_data" / "de" / "responses.yml"
    de.write_text(
        de.read_text(encoding="utf-8").replace(
            "{support_hours} (Berliner Zeit)", "Montag bis Freitag 9-17 Uhr"
        ),
        encoding="utf-8",
    )
    got = runner.invoke(app, ["data", "validate", "--content", str(content)])
    assert f"{de}:23: warning: utter_faq/support_hours says '9-17'" in got.output, got.output
    assert "Monday–Friday 08:00–18:00" in got.output


def test_a_wrong_shop_file_names_its_line(tmp_path: Path) -> None:
    content = tmp_path / "shop"
    shutil.copytree(REPO / "nlu_data", content / "nlu_data")
    (content / "shop.yml").write_text("support:\n  timezone: Europe/Berlin\n  hours: mon-fri 9-5\n")
    got = CliRunner().invoke(app, ["data", "validate", "--content", str(content)])
    assert got.exit_code == 1
    assert f"{content / 'shop.yml'}:3: error: working hours" in got.output, got.output
