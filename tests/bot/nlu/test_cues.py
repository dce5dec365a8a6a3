"""Dialogue-act cues: words of greeting, yes/no, asking for a person... the examples lack."""

from __future__ import annotations

import pytest

from bot.nlu import cues
from bot.nlu import text as text_module
from bot.nlu.data import Example, TrainingData
from bot.nlu.model import EmbeddedNLU
from bot.nlu.text import fold, tokens


def acts(text: str, language: str) -> list[str]:
    return cues.cue_tokens([fold(w) for w in tokens(text.casefold())], language)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Moin!", "de", ["cue_hello"]),
        ("Kann ich mit einem Mitarbeiter sprechen?", "de", ["cue_person"]),
        ("Beszélhetnék egy munkatárssal?", "hu", ["cue_person"]),  # inflected: prefix
        ("Köszönjük szépen", "hu", ["cue_thanks"]),
        ("hej då!", "sv", ["cue_bye", "cue_hello"]),  # the pair, and "hej" alone
        ("Rozmawiam z botem?", "pl", ["cue_bot"]),
        ("Do widzenia", "pl", ["cue_bye"]),
        ("What does shipping cost?", "en", []),
        ("hello", "xx", []),  # a language without a list: no cues
    ],
)
def test_cue_words(text: str, language: str, expected: list[str]) -> None:
    assert acts(text, language) == expected


def test_a_cue_moves_a_word_the_examples_never_used_towards_its_act(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ex(intent: str, *texts: str) -> list[Example]:
        return [Example(text=t, intent=intent, language="de") for t in texts]

    data = {
        "de": TrainingData(
            language="de",
            examples=ex("greet", "hallo", "hallo zusammen", "guten Tag", "hi")
            + ex("goodbye", "tschüss", "auf Wiedersehen", "bis bald", "gute Nacht")
            + ex("affirm", "ja", "ja bitte", "genau das", "okay")
            + ex("deny", "nein", "nein danke", "lieber nicht", "keine Lust"),
        )
    }
    unseen = {"Moin": "greet", "Ciao": "goodbye", "stimmt": "affirm", "niemals": "deny"}

    def scores() -> dict[str, float]:
        nlu = EmbeddedNLU.train(data, responses={})
        return {
            t: dict(nlu.parse(t, "de", threshold=0.0).ranking)[intent]
            for t, intent in unseen.items()
        }

    with_cues = scores()
    monkeypatch.setattr(text_module, "cue_tokens", lambda words, language: [])
    without = scores()
    for text in unseen:  # none of these words is in the examples: only the cues know them
        assert with_cues[text] > without[text], text
