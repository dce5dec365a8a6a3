"""The frozen own-shop paraphrase set (bench/data/paraphrases/, see its README): loading and
scoring. Measurement only: nothing in the product is tuned on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent / "data" / "paraphrases"
LANGUAGES = ("en", "de", "hu", "sv", "pl")
FALLBACK = "nlu_fallback"


@dataclass
class ParaphraseSet:
    language: str
    in_scope: list[tuple[str, str]]  # (text, intent)
    out_of_scope: list[str]


def load(language: str) -> ParaphraseSet:
    d = yaml.safe_load((HERE / f"{language}.yml").read_text(encoding="utf-8"))
    pairs = [(t, block["intent"]) for block in d["in_scope"] for t in block["examples"]]
    return ParaphraseSet(language, pairs, list(d["out_of_scope"]))


@dataclass
class Scores:
    n: int = 0
    right: int = 0
    wrong: int = 0
    clarified: int = 0
    rejected: int = 0
    top3: int = 0
    top1: int = 0
    n_oos: int = 0
    oos_not_answered: int = 0
    oos_far: int = 0
    language_right: int = 0
    n_all: int = 0
    # in scope: (confidence, top intent right, far from every topic); out of scope: (confidence,
    # far): what the split would be at another threshold (see ``at``)
    parses: list[tuple[float, bool, bool]] = field(default_factory=list)
    oos_parses: list[tuple[float, bool]] = field(default_factory=list)

    def gap(self) -> str:
        """Where the top intent was right but the question not answered: below the threshold
        (clarified), or flagged far from every topic (rejected)."""
        n = self.n or 1
        low = sum(ok and not far for c, ok, far in self.parses) - self.right
        far = sum(ok and far for _, ok, far in self.parses)
        return (
            f"top-1 right {self.top1 / n:.2f} = answered {self.right / n:.2f} + held back "
            f"below the threshold {low / n:.2f} + flagged far {far / n:.2f}"
        )

    def at(self, threshold: float) -> str:
        """The split had the model answered at ``threshold`` (meaningful when the confidence
        is the calibrated one)."""
        n = self.n or 1
        right = sum(c >= threshold and ok and not far for c, ok, far in self.parses)
        wrong = sum(c >= threshold and not ok and not far for c, ok, far in self.parses)
        oos = sum(c < threshold or far for c, far in self.oos_parses)
        return (
            f"at {threshold}: right {right / n:.2f} wrong {wrong / n:.2f} "
            f"OOS not answered {oos / max(1, self.n_oos):.2f}"
        )

    def line(self) -> str:
        n = self.n or 1
        return (
            f"right {self.right / n:.2f} wrong {self.wrong / n:.2f} "
            f"clarified {self.clarified / n:.2f} rejected {self.rejected / n:.2f} | "
            f"top-1 {self.top1 / n:.2f} top-3 {self.top3 / n:.2f} | "
            f"OOS not answered {self.oos_not_answered / max(1, self.n_oos):.2f} "
            f"(of them flagged far from every topic {self.oos_far / max(1, self.n_oos):.2f}) | "
            f"language id {self.language_right / max(1, self.n_all):.3f}"
        )


def score(parse: Callable[[str, str], dict[str, Any]], s: ParaphraseSet) -> Scores:
    """``parse(text, language_hint)`` -> a Rasa parse dict (with ``out_of_scope`` when the
    model says the text is far from every topic)."""
    out = Scores()
    for text, gold in s.in_scope:
        r = parse(text, s.language)
        ranking = [x["name"] for x in r["intent_ranking"] if x["name"] != FALLBACK]
        name = r["intent"]["name"]
        out.n += 1
        out.n_all += 1
        out.language_right += r.get("language") == s.language
        out.top1 += bool(ranking) and ranking[0] == gold
        out.top3 += gold in ranking[:3]
        top_right = bool(ranking) and ranking[0] == gold
        out.parses.append((r["intent"]["confidence"], top_right, bool(r.get("out_of_scope"))))
        if name == gold:
            out.right += 1
        elif name != FALLBACK:
            out.wrong += 1
        elif r.get("out_of_scope"):
            out.rejected += 1
        else:
            out.clarified += 1
    for text in s.out_of_scope:
        r = parse(text, s.language)
        out.n_oos += 1
        out.n_all += 1
        out.language_right += r.get("language") == s.language
        out.oos_parses.append((r["intent"]["confidence"], bool(r.get("out_of_scope"))))
        if r["intent"]["name"] == FALLBACK:
            out.oos_not_answered += 1
            out.oos_far += bool(r.get("out_of_scope"))
    return out
