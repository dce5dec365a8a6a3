"""What people type to steer a flow, in the five shipped languages.

Short words fool any language identifier ("back" may pass for Swedish), so each word knows its
languages: the reply comes in the language of the word (or the turn's, when the word is one of
its own).
"""

from __future__ import annotations

import re
import unicodedata

# fmt: off
_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "pause": {
        "en": ("pause", "later", "not now", "pause please", "hold on"),
        "de": ("pause", "später", "nicht jetzt", "pausieren", "pause bitte"),
        "hu": ("szünet", "később", "most nem", "szüneteltet", "szüneteltetés"),
        "sv": ("paus", "pausa", "senare", "inte nu"),
        "pl": ("pauza", "później", "nie teraz", "wstrzymaj"),
    },
    "continue": {
        "en": ("continue", "resume", "go on", "carry on", "next", "next step", "ok next"),
        "de": ("weiter", "fortsetzen", "weitermachen", "nächster schritt", "fortfahren"),
        "hu": ("folytatás", "folytasd", "folytassuk", "tovább", "következő", "mehet"),
        "sv": ("fortsätt", "återuppta", "nästa", "vidare", "gå vidare"),
        "pl": ("kontynuuj", "dalej", "wznów", "następny", "następny krok"),
    },
    "skip": {
        "en": ("skip", "skip this", "skip it"),
        "de": ("überspringen", "auslassen"),
        "hu": ("kihagy", "kihagyom", "kihagyás", "ugorjuk át", "ugrás"),
        "sv": ("hoppa över", "skippa"),
        "pl": ("pomiń", "pomin", "przeskocz"),
    },
    "back": {
        "en": ("back", "go back", "previous", "previous step"),
        "de": ("zurück", "vorheriger schritt"),
        "hu": ("vissza", "előző", "menjünk vissza"),
        "sv": ("tillbaka", "föregående", "gå tillbaka"),
        "pl": ("wstecz", "cofnij", "poprzedni", "wróć"),
    },
}
# fmt: on

CONTROL_WORDS: dict[str, frozenset[str]] = {
    kind: frozenset(w for words in by_lang.values() for w in words)
    for kind, by_lang in _WORDS.items()
}

_PUNCT = re.compile(r"[\s!.?,;:…\"'()«»„“”]+")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold()
    return _PUNCT.sub(" ", text).strip()


def control_word(text: str) -> str | None:
    """``pause`` / ``continue`` / ``skip`` / ``back`` when the message is just that."""
    said = normalize(text)
    if not said or len(said) > 30:
        return None
    for kind, words in CONTROL_WORDS.items():
        if said in words:
            return kind
    return None


def word_language(text: str, prefer: str) -> str | None:
    """The language of a control word: ``prefer`` when it is one of its, else the first."""
    said = normalize(text)
    langs = [lang for by_lang in _WORDS.values() for lang, ws in by_lang.items() if said in ws]
    if not langs:
        return None
    return prefer if prefer in langs else langs[0]
