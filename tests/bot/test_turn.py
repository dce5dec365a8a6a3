"""``bot.engine.turn``: the typed per-turn state features keep between their hooks."""

from __future__ import annotations

from bot.engine import StateKey, TurnState, parse_payload

TEXTS = StateKey[list[str]]("test.texts", per_contact=True)
HANDLED = StateKey[bool]("test.handled")


def test_state_keeps_values_by_key() -> None:
    state = TurnState()
    assert state.get(TEXTS) is None
    state.set(HANDLED, True)
    state.setdefault(TEXTS, []).append("hello")
    state.setdefault(TEXTS, []).append("again")
    assert state.get(TEXTS) == ["hello", "again"] and state.get(HANDLED) is True


def test_a_relinked_turn_forgets_what_was_read_for_the_old_contact() -> None:
    state = TurnState()
    state.set(TEXTS, ["from the old contact"])
    state.set(HANDLED, True)
    state.forget_contact()
    assert state.get(TEXTS) is None and state.get(HANDLED) is True


def test_two_keys_of_the_same_name_are_two_slots() -> None:
    other = StateKey[list[str]]("test.texts")
    state = TurnState()
    state.set(TEXTS, ["a"])
    assert state.get(other) is None


def test_a_button_payload_is_a_parse() -> None:
    parse = parse_payload('/request_human{"reason": "unsure"}')
    assert parse is not None
    assert parse["intent"] == {"name": "request_human", "confidence": 1.0}
    assert parse["entities"][0]["entity"] == "reason" and parse["entities"][0]["value"] == "unsure"
    assert parse_payload("hello") is None and parse_payload("/x{not json}") is None
