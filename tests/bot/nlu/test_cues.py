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
        ("Kann ich mit einem Mitarbeiter sprechen?", "de", ["cue_person", "cue_talk"]),
        ("Beszélhetnék egy munkatárssal?", "hu", ["cue_person", "cue_talk"]),  # inflected: prefix
        ("Köszönjük szépen", "hu", ["cue_thanks"]),
        ("hej då!", "sv", ["cue_bye", "cue_hello"]),  # the pair, and "hej" alone
        ("Rozmawiam z botem?", "pl", ["cue_bot", "cue_talk"]),
        ("Do widzenia", "pl", ["cue_bye"]),
        ("What does shipping cost?", "en", ["cue_cost", "cue_ship"]),  # shop concepts
        ("Wie hoch sind die Versandkosten?", "de", ["cue_cost", "cue_ship"]),  # a compound
        ("Mennyi a postaköltség Svájcba?", "hu", ["cue_abroad", "cue_cost", "cue_ship"]),
        ("Czy mogę zapłacić w ratach?", "pl", ["cue_cost", "cue_instalment", "cue_pay"]),
        ("Kan jag returnera varan?", "sv", ["cue_return"]),
        ("Can I send it back?", "en", ["cue_return", "cue_ship"]),  # a pair one word apart
        ("Ne küldjetek több hírlevelet", "hu", ["cue_discount", "cue_no", "cue_ship", "cue_stop"]),
        # a Hungarian preverb away from its verb ("lemond", "visszaküld"), either side
        ("Mondd le a tegnapi rendelést!", "hu", ["cue_cancel"]),
        ("Küldhetem vissza a csomagot?", "hu", ["cue_return", "cue_ship"]),
        # folded alike: "części" (parts), "częściami" (in instalments), "cześć" (hello, bye)
        ("Gdzie kupię części do ekspresu?", "pl", ["cue_parts"]),
        ("Czy mogę płacić częściami?", "pl", ["cue_instalment", "cue_pay"]),
        ("Cześć!", "pl", ["cue_bye", "cue_hello"]),
        ("Tell me a joke", "en", []),
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


def test_a_shop_concept_carries_an_intent_from_one_language_to_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Polish examples name no cost, delivery time or return; the German ones do. A Polish
    question in words no example uses still finds its intent through the concepts the German
    examples show (analysed as German: their own stems and concept lists)."""

    def ex(language: str, intent: str, *texts: str) -> list[Example]:
        return [Example(text=t, intent=intent, language=language) for t in texts]

    data = {
        "de": TrainingData(
            language="de",
            examples=ex("de", "faq/shipping_cost", "Was kostet der Versand?", "Versandkosten?")
            + ex("de", "faq/delivery_time", "Wie lange dauert die Lieferung?", "Lieferzeit?")
            + ex("de", "faq/returns", "Kann ich zurückschicken?", "Rücksendung möglich?"),
        ),
        "pl": TrainingData(
            language="pl",
            examples=ex("pl", "faq/shipping_cost", "pytanie o Nordbrew")
            + ex("pl", "faq/delivery_time", "pytanie o sklep")
            + ex("pl", "faq/returns", "pytanie o zamówienie"),
        ),
    }
    unseen = {
        "Ile wynosi opłata za przesyłkę?": "faq/shipping_cost",
        "Jak długo czeka się na paczkę?": "faq/delivery_time",
        "Czy mogę oddać towar i dostać zwrot?": "faq/returns",
    }

    def answers() -> dict[str, str]:
        # the Polish classifier itself (three Polish examples are too few to tell the language)
        clf = EmbeddedNLU.train(data, responses={}).intents["pl"]
        return {t: clf.classes[int(clf.predict_proba([t])[0].argmax())] for t in unseen}

    assert answers() == unseen
    monkeypatch.setattr(cues, "SHOP", {})
    cues._cues.cache_clear()
    try:
        assert answers() != unseen  # without the concepts nothing links the two languages
    finally:
        cues._cues.cache_clear()


def test_every_shipped_language_names_the_same_shop_concepts() -> None:
    # a concept only one language knows teaches the others nothing (and is most likely a typo)
    from bot.nlu.concepts import SHOP

    names = {lang: set(table) for lang, table in SHOP.items()}
    assert set(names) >= {"en", "de", "hu", "sv", "pl"}
    assert all(n == names["en"] for n in names.values()), names
    for lang, table in SHOP.items():
        for concept, entries in table.items():
            for entry in entries.split():  # folded: what the matcher compares against
                assert entry == fold(entry), (lang, concept, entry)


def test_asking_for_a_person_and_asking_whether_this_is_one_stay_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both name a person: the request ("I want to talk ...") and the question ("are you
    ...?") tell a handoff from a bot challenge. The English examples teach the German
    classifier, whose own examples say nothing, through the acts alone."""

    def ex(language: str, intent: str, *texts: str) -> list[Example]:
        return [Example(text=t, intent=intent, language=language) for t in texts]

    data = {
        "en": TrainingData(
            language="en",
            examples=ex(
                "en",
                "request_human",
                "I want to talk to a person",
                "please connect me with a human",
                "I'd like to speak to someone",
            )
            + ex(
                "en",
                "bot_challenge",
                "are you a person?",
                "is this a human or a bot?",
                "are you real?",
            ),
        ),
        "de": TrainingData(
            language="de",
            examples=ex("de", "request_human", "Nordbrew A")
            + ex("de", "bot_challenge", "Nordbrew B"),
        ),
    }
    unseen = {
        "Ich möchte mit einem Menschen reden": "request_human",
        "Verbinden Sie mich bitte mit jemandem": "request_human",
        "Bist du ein Mensch?": "bot_challenge",
        "Ist das ein echter Mitarbeiter?": "bot_challenge",
    }

    def scores() -> dict[str, float]:
        clf = EmbeddedNLU.train(data, responses={}).intents["de"]
        return {
            t: float(clf.predict_proba([t])[0][clf.classes.index(intent)])
            for t, intent in unseen.items()
        }

    with_acts = scores()
    assert all(p > 0.5 for p in with_acts.values()), with_acts
    without = {
        lang: {a: e for a, e in table.items() if a not in {"talk", "want", "you_are", "real"}}
        for lang, table in cues._RAW.items()
    }
    monkeypatch.setattr(cues, "_RAW", without)
    cues._cues.cache_clear()
    try:
        without_acts = scores()
    finally:
        cues._cues.cache_clear()
    for text in unseen:  # "Mensch", "jemand", "Mitarbeiter" name a person in both intents
        assert with_acts[text] > without_acts[text] + 0.2, text


def test_every_shipped_language_names_the_same_dialogue_acts() -> None:
    names = {lang: set(table) for lang, table in cues._RAW.items()}
    assert set(names) >= {"en", "de", "hu", "sv", "pl"}
    assert all(n == names["en"] for n in names.values()), names
    for lang, table in cues._RAW.items():
        for act, entries in table.items():
            for entry in entries.split():
                assert entry == fold(entry), (lang, act, entry)


def test_a_hungarian_preverb_is_split_off_only_where_it_is_one() -> None:
    assert cues._separated("visszakuld*", "hu") == ["vissza_kuld*", "kuld*_vissza"]
    assert cues._separated("elofizet*", "hu") == ["elo_fizet*", "fizet*_elo"]  # not "el"
    for entry in ("beszel*", "legolcsobb*", "lengyel*", "ki", "*kuld*"):
        assert cues._separated(entry, "hu") == [], entry
    assert cues._separated("visszakuld*", "pl") == []  # other languages: no preverbs
