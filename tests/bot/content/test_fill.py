"""bot.content.fill: the one way a text's placeholders are filled."""

from __future__ import annotations

import logging

import pytest

from bot.content.fill import fill


def test_values_fill_their_placeholders() -> None:
    assert fill("Hi {name}, {n} new", {"name": "Anna", "n": 3}) == "Hi Anna, 3 new"
    assert fill("{total:.2f} EUR", {"total": 12.5}) == "12.50 EUR"
    assert fill("{{literal}} {x}", {"x": 1}) == "{literal} 1"


def test_a_text_without_placeholders_is_returned_as_it_is() -> None:
    assert fill("Plain text", {}) == "Plain text"


def test_none_renders_as_nothing() -> None:
    assert fill("Thanks{name}!", {"name": None}) == "Thanks!"


def test_a_missing_placeholder_stays_visible_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "Your order {order_id} ships {when}"
    with caplog.at_level(logging.WARNING, logger="bot.content.fill"):
        assert fill(text, {"when": "today"}) == "Your order {order_id} ships today"
        assert fill(text, {"when": "tomorrow"}) == "Your order {order_id} ships tomorrow"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "{order_id}" in warnings[0]


def test_lookups_are_not_filled_from_content() -> None:
    assert fill("{user.__class__} {a[0]}", {"user": "x", "a": [1]}) == "{user.__class__} {a[0]}"


def test_a_broken_template_is_sent_as_written(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.content.fill"):
        assert fill("50% off {today", {"today": 1}) == "50% off {today"
    assert "not a valid template" in caplog.text
