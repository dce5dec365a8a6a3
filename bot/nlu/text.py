"""Text normalisation shared by training and parsing: case and accent folding, stems."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from bot.nlu.cues import cue_tokens

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# Snowball algorithm names by language code
STEMMERS = {
    "en": "english",
    "de": "german",
    "hu": "hungarian",
    "sv": "swedish",
    "pl": "polish",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "da": "danish",
    "no": "norwegian",
    "nb": "norwegian",
    "fi": "finnish",
    "cs": "czech",
    "ro": "romanian",
    "ru": "russian",
    "tr": "turkish",
    "el": "greek",
    "lt": "lithuanian",
    "et": "estonian",
}
# letters that do not decompose under NFKD but that people type without their accent
_EXTRA = str.maketrans({"ł": "l", "ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "ı": "i", "œ": "oe"})


def fold(text: str) -> str:
    """Lower case without accents: ``"Szállítás Łódź"`` -> ``"szallitas lodz"``."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_EXTRA))
    return "".join(c for c in text if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


@lru_cache(maxsize=64)
def _stemmer(language: str) -> Any:
    algo = STEMMERS.get(language)
    if algo is None:
        return None
    try:
        import Stemmer  # PyStemmer: the same Snowball algorithms in C

        return Stemmer.Stemmer(algo, 100_000)
    except (ImportError, KeyError):
        import snowballstemmer

        try:
            return snowballstemmer.stemmer(algo)
        except KeyError:
            return None


@lru_cache(maxsize=200_000)
def _stem(language: str, word: str) -> str:
    return str(_stemmer(language).stemWord(word))


def stems(words: list[str], language: str) -> list[str]:
    st = _stemmer(language)
    if st is None:
        return words
    # PyStemmer caches in C; the pure-Python fallback is slow enough to cache here
    return [_stem(language, w) for w in words]


def analyse(text: str, language: str) -> str:
    """The form the word features see: casefolded words, stemmed, then accent-folded, and the
    dialogue-act cues the words show (``bot.nlu.cues``)."""
    words = tokens(text.casefold())
    out = [fold(w) for w in stems(words, language)]
    return " ".join(out + cue_tokens([fold(w) for w in words], language))


def surface(text: str) -> str:
    """The form the character features see: folded, single-spaced, padded."""
    return " " + " ".join(tokens(fold(text))) + " "
