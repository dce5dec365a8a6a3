"""Entities of a text: regexes, lookup tables (whole words, folded) and synonyms from the
shop's Rasa data."""

from __future__ import annotations

import re
from typing import Any

from bot.nlu.data import TrainingData
from bot.nlu.text import fold


class EntityExtractor:
    def __init__(self, data: TrainingData) -> None:
        self.regexes = [
            (name, re.compile(p, re.IGNORECASE)) for name, ps in data.regexes.items() for p in ps
        ]
        self.lookups: list[tuple[str, re.Pattern[str], str]] = []
        for name, values in data.lookups.items():
            for v in values:
                self.lookups.append(
                    (name, re.compile(r"(?<!\w)" + re.escape(fold(v)) + r"(?!\w)"), v)
                )
        self.synonyms = dict(data.synonyms)

    def extract(self, text: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name, rx in self.regexes:
            for m in rx.finditer(text):
                found.append(
                    self._entity(name, m.start(), m.end(), m.group(0), "RegexEntityExtractor")
                )
        folded = fold(text)
        # folding keeps lengths for the scripts we ship; offsets then map back to ``text``
        same_length = len(folded) == len(text)
        for name, rx, value in self.lookups:
            for m in rx.finditer(folded):
                start, end = (m.start(), m.end()) if same_length else (None, None)
                span = text[m.start() : m.end()] if same_length else value
                found.append(self._entity(name, start, end, span, "RegexEntityExtractor"))
        return found

    def _entity(
        self, name: str, start: int | None, end: int | None, span: str, extractor: str
    ) -> dict[str, Any]:
        value = self.synonyms.get(fold(span), span)
        e: dict[str, Any] = {
            "entity": name,
            "start": start,
            "end": end,
            "value": value,
            "extractor": extractor,
            "confidence_entity": 1.0,
        }
        if value != span:
            e["processors"] = ["EntitySynonymMapper"]
        return e
