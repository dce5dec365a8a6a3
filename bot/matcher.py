"""A word-overlap matcher: the fallback NLU when no trained model is available.

It returns results in Rasa's ``/model/parse`` shape, the contract every NLU backend meets.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

_WORD = re.compile(r"\w+", re.UNICODE)
_ANNOT = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    return _WORD.findall(fold(text))


class SimpleMatcher:
    def __init__(self, examples: dict[str, list[tuple[str, str]]], threshold: float = 0.5) -> None:
        """``examples``: language -> [(text, intent)]."""
        self.threshold = threshold
        self._examples = {
            lang: [(set(tokens(t)), intent) for t, intent in ex] for lang, ex in examples.items()
        }
        self._vocab = {
            lang: Counter(w for toks, _ in ex for w in toks) for lang, ex in self._examples.items()
        }

    @classmethod
    def from_folder(cls, nlu_data_dir: Path, threshold: float = 0.5) -> SimpleMatcher:
        examples: dict[str, list[tuple[str, str]]] = {}
        if nlu_data_dir.is_dir():
            for lang_dir in sorted(p for p in nlu_data_dir.iterdir() if p.is_dir()):
                f = lang_dir / "nlu.yml"
                if not f.exists():
                    continue
                data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
                for block in data.get("nlu") or []:
                    if "intent" in block and isinstance(block.get("examples"), str):
                        for line in block["examples"].splitlines():
                            line = line.strip()
                            if line.startswith("- "):
                                text = _ANNOT.sub(r"\1", line[2:])
                                examples.setdefault(lang_dir.name, []).append(
                                    (text, str(block["intent"]))
                                )
        return cls(examples, threshold)

    def detect_language(self, toks: list[str], hint: str | None) -> str | None:
        best, best_score = hint, 0.0
        for lang, vocab in self._vocab.items():
            score = sum(1 for t in toks if t in vocab)
            if score > best_score or (score == best_score and lang == hint):
                best, best_score = lang, score
        return best

    async def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]:
        toks = tokens(text)
        lang = self.detect_language(toks, language_hint)
        scores: dict[str, float] = {}
        q = set(toks)
        for ex, intent in self._examples.get(lang or "", []):
            if not q or not ex:
                continue
            s = len(q & ex) / len(q | ex)
            if s > scores.get(intent, 0.0):
                scores[intent] = s
        ranking = sorted(scores.items(), key=lambda kv: -kv[1])[:10]
        name, conf = ranking[0] if ranking else ("nlu_fallback", 0.0)
        if conf < self.threshold:
            name, conf = "nlu_fallback", self.threshold
        return {
            "text": text,
            "intent": {"name": name, "confidence": conf},
            "entities": [],
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
            "language": lang,
        }
