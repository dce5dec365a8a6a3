"""choose_reach: opt-out, the feature's hold, capability, consent and the window, each with its
reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.outreach.reach import Person, Reach, choose_reach
from bot.outreach.windows import OpenHours, QuietHours, parse_week
from bot.types import Capabilities

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday, 13:00 in Berlin
PUSH = Capabilities(push=True)
CAPS = {"chat": PUSH, "dm": PUSH, "request": Capabilities(push=False)}
BERLIN = ZoneInfo("Europe/Berlin")
CHAT = Reach("chat", "c1", NOW - timedelta(days=2))
DM = Reach("dm", "d1", NOW - timedelta(days=1))
REQUEST = Reach("request", "r1", NOW)


def decide(options: list[Reach], person: Person | None = None, **kw: object) -> object:
    kw.setdefault("purpose", "service")
    return choose_reach(
        options,
        person or Person({}),
        capabilities=CAPS,
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )


def test_the_channel_seen_last_among_those_that_can_write_first() -> None:
    d = decide([CHAT, DM, REQUEST])
    assert (d.outcome, d.channel, d.address, d.reason) == ("send", "dm", "d1", None)


def test_the_preferred_channel_then_the_features_order_win() -> None:
    assert decide([CHAT, DM], Person({}, preferred_channel="chat")).channel == "chat"
    assert decide([CHAT, DM], order=["chat"]).channel == "chat"


def test_a_channel_that_cannot_push_is_unreachable() -> None:
    d = decide([REQUEST])
    assert (d.outcome, d.reason, d.detail) == ("skip", "unreachable", "request")
    assert decide([]).reason == "unreachable"


def test_a_new_channel_that_declares_push_is_used_without_being_named_anywhere() -> None:
    d = choose_reach(
        [Reach("pigeon", "p1")],
        Person({}),
        purpose="service",
        capabilities={"pigeon": Capabilities(push=True)},
        now=NOW,
    )
    assert (d.outcome, d.channel) == ("send", "pigeon")


def test_opted_out_skips_marketing_only() -> None:
    person = Person({("*", "marketing"): True}, opted_out=True)
    assert decide([DM], person, purpose="marketing").reason == "opted_out"
    assert decide([DM], person).outcome == "send"


def test_a_hold_of_the_feature_skips_with_its_reason() -> None:
    d = decide([DM], hold="handoff_open")
    assert (d.outcome, d.reason) == ("skip", "handoff_open")


def test_consent_per_channel_beats_the_wildcard() -> None:
    refused_dm = Person({("dm", "service"): False})
    assert decide([CHAT, DM], refused_dm).channel == "chat"
    assert decide([DM], refused_dm).reason == "no_consent"
    marketing = Person({("*", "marketing"): True, ("chat", "marketing"): False})
    assert decide([CHAT, DM], marketing, purpose="marketing").channel == "dm"


def test_marketing_needs_a_yes_or_the_soft_opt_in_of_a_customer() -> None:
    assert decide([DM], purpose="marketing").reason == "no_consent"
    customer = Person({}, existing_customer=True)
    assert decide([DM], customer, purpose="marketing").reason == "no_consent"
    d = decide([DM], customer, purpose="marketing", soft_opt_in=True)
    assert (d.outcome, d.soft_opt_in) == ("send", True)


def test_quiet_hours_defer_to_their_end_in_the_persons_zone() -> None:
    quiet = QuietHours(parse_week("12:00-14:00"), BERLIN)  # 13:00 in Berlin: quiet
    d = decide([DM], window=quiet)
    assert (d.outcome, d.reason, d.channel) == ("defer", "quiet_hours", "dm")
    assert d.until == datetime(2026, 1, 5, 14, 0, tzinfo=BERLIN)
    late = QuietHours(parse_week("21:00-08:00"), BERLIN)
    assert decide([DM], window=late).outcome == "send"


def test_working_hours_and_holidays_defer_with_their_reason() -> None:
    hours = parse_week("mon-fri 14:00-17:00", wrap=False, need_days=True)
    d = decide([DM], window=OpenHours(hours, BERLIN))
    assert (d.outcome, d.reason) == ("defer", "outside_hours")
    assert d.until == datetime(2026, 1, 5, 14, 0, tzinfo=BERLIN)
    holiday = OpenHours(hours, BERLIN, frozenset({NOW.date()}))
    d = decide([DM], window=holiday)
    assert (d.reason, d.until) == ("holiday", datetime(2026, 1, 6, 14, 0, tzinfo=BERLIN))


def test_nothing_is_deferred_for_a_person_who_cannot_be_reached() -> None:
    quiet = QuietHours(parse_week("00:00-24:00"), BERLIN)
    assert decide([REQUEST], window=quiet).reason == "unreachable"
