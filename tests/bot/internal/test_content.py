"""Update files and the company calendar: what they mean, and errors with file and line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.internal.company_calendar import CompanyCalendar
from bot.internal.content import ContentError, load_file, load_folder
from tests.bot.internal.conftest import Content


def test_markdown_update_with_translation(content: Content) -> None:
    content.update(
        "launch",
        """
        title: Spring collection
        audience: [department:support, new_hires]
        schedule: 2026-02-10 09:30
        goal: Product knowledge
        priority: high
        topic: Launch
        links: [{title: Shop, url: "https://example.com"}]
        """,
        "# Big news\nTwelve new blends.",
    )
    (content.root / "updates" / "launch.de.md").write_text(
        "---\ntitle: Frühjahrskollektion\n---\nZwölf neue Mischungen.\n", encoding="utf-8"
    )
    specs, errors = load_folder(content.root, ["en", "de"])
    assert errors == []
    (spec,) = specs
    assert spec.key == "launch" and spec.goal == "product_knowledge" and spec.topic == "launch"
    assert spec.audience == "department:support, new_hires"
    assert (spec.schedule, spec.schedule_tz) == ("2026-02-10T09:30", None)
    assert spec.bodies == {"en": "# Big news\nTwelve new blends.", "de": "Zwölf neue Mischungen."}
    assert spec.titles == {"de": "Frühjahrskollektion"}


def test_yaml_update_with_fixed_zone_and_channel(tmp_path: Path) -> None:
    path = tmp_path / "flows" / "internal" / "allhands.yml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "title: All hands\naudience: everyone\nchannel: C0GENERAL\n"
        "schedule: 2026-03-05 16:00 Europe/Berlin\nbody:\n  en: Join us.\n  de: Kommt alle.\n",
        encoding="utf-8",
    )
    spec = load_file(path)
    assert (spec.delivery, spec.channel_id) == ("channel", "C0GENERAL")
    assert spec.schedule_tz == "Europe/Berlin" and set(spec.bodies) == {"en", "de"}


@pytest.mark.parametrize(
    ("front", "line", "problem"),
    [
        ("title: x\naudience: departmnt:support", 3, "unknown audience 'departmnt:support'"),
        ("title: x\naudience: everyone\ngoal: fame", 4, "unknown goal 'fame'"),
        ("title: x\naudience: everyone\nschedule: next monday", 4, "schedule 'next monday'"),
        (
            "title: x\naudience: everyone\npriority: urgent",
            4,
            "priority: Input should be 'high', 'normal' or 'low'",
        ),
        ("title: x\naudience: everyone\nschedul: 2026-01-01 10:00", 4, "unknown key 'schedul'"),
        ("title: x\naudience: everyone\ndelivery: channel", 4, "needs 'channel:"),
        ("title: x\naudience: everyone\nlinks: [nope]", 4, "links.0.url: use {title"),
        ("title: [unclosed\naudience: everyone", 3, "YAML syntax"),
        ("audience: everyone", 1, "'title' is missing"),
    ],
)
def test_errors_name_file_and_line(content: Content, front: str, line: int, problem: str) -> None:
    path = content.update("bad", front)
    with pytest.raises(ContentError) as e:
        load_file(path)
    assert str(e.value).startswith(f"{path}:{line}: ")
    assert problem in str(e.value)


def test_one_bad_file_does_not_hide_the_others(content: Content) -> None:
    content.update("good", "title: Good\naudience: everyone")
    content.update("bad", "title: Bad\naudience: nobody")
    specs, errors = load_folder(content.root, ["en"])
    assert [s.key for s in specs] == ["good"]
    assert len(errors) == 1 and "bad.md:3" in str(errors[0])


def test_calendar_holidays_days_off_and_working_hours(content: Content) -> None:
    path = content.calendar(
        """
        timezone: Europe/Berlin
        working_hours: "08:30-16:00"
        working_days: [mon, tue, wed, thu]
        dates:
          - {date: 2026-01-06, kind: holiday, title: Epiphany}
          - {from: 2026-12-24, to: 2026-12-31, kind: holiday, title: Winter break}
          - {date: 2026-02-10, kind: launch, title: Spring collection}
        """
    )
    cal = CompanyCalendar.load(path, timezone="UTC")
    berlin = ZoneInfo("Europe/Berlin")
    assert cal.closed_reason(datetime(2026, 1, 6, 10, tzinfo=berlin)) == "holiday (Epiphany)"
    assert cal.closed_reason(datetime(2026, 1, 9, 10, tzinfo=berlin)) == "day off (fri)"
    assert cal.closed_reason(datetime(2026, 1, 7, 8, tzinfo=berlin)) == (
        "outside working hours (08:30-16:00)"
    )
    assert cal.closed_reason(datetime(2026, 1, 7, 9, tzinfo=berlin)) is None
    # Wednesday 23 December 16:30 -> after hours, then the winter break, then a Friday:
    # Monday 4 January 2027 at 08:30
    assert cal.next_open(datetime(2026, 12, 23, 16, 30, tzinfo=berlin)) == datetime(
        2027, 1, 4, 8, 30, tzinfo=berlin
    )
    assert [d.title for d in cal.on(datetime(2026, 2, 10, tzinfo=UTC).date())] == [
        "Spring collection"
    ]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("timezone: Mars/Base\n", 1, "unknown time zone"),
        ("dates:\n  - {date: 2026-01-06, kind: party}\n", 2, "kind: Input should be 'holiday'"),
        ("dates:\n  - {date: 2026-01-06}\n  - {date: 2026-13-01}\n", 3, "valid date"),
        ("dates:\n  - {kind: holiday}\n", 2, "give date: YYYY-MM-DD, or from: and to:"),
        ("dates:\n  - {from: 2026-12-31, to: 2026-12-24}\n", 2, "'to' (2026-12-24) is before"),
        ("working_hours: '17:00-09:00'\n", 1, "start must be before"),
        ("working_days: [mon, fry]\n", 1, "unknown weekday 'fry'"),
        ("timezone: UTC\nworkng_days: [mon]\n", 2, "unknown key 'workng_days'"),
    ],
)
def test_calendar_errors_name_file_and_line(
    content: Content, text: str, line: int, problem: str
) -> None:
    path = content.calendar(text)
    with pytest.raises(ContentError) as e:
        CompanyCalendar.load(path, timezone="UTC")
    assert str(e.value).startswith(f"{path}:{line}: ") and problem in str(e.value)
