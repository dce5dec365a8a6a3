"""Evaluation in Rasa's shapes: ``intent_report.json`` and ``intent_errors.json``."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


def intent_report(gold: list[str], predicted: list[str]) -> dict[str, Any]:
    """Per intent precision, recall, f1-score, support, confused_with; accuracy, macro and
    weighted averages (the layout of ``rasa test nlu``)."""
    labels = sorted(set(gold) | set(predicted))
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    confused: dict[str, Counter[str]] = defaultdict(Counter)
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
            confused[g][p] += 1
    report: dict[str, Any] = {}
    support = Counter(gold)
    for label in labels:
        prec = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        rec = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        report[label] = {
            "precision": prec,
            "recall": rec,
            "f1-score": f1,
            "support": support[label],
            "confused_with": dict(confused[label].most_common(3)),
        }
    n = len(gold)
    in_gold = [label for label in labels if support[label]]
    report["accuracy"] = sum(tp.values()) / n if n else 0.0
    for avg, weights in (
        ("macro avg", {label: 1.0 for label in in_gold}),
        ("weighted avg", {label: float(support[label]) for label in in_gold}),
    ):
        total = sum(weights.values()) or 1.0
        report[avg] = {
            k: sum(report[label][k] * w for label, w in weights.items()) / total
            for k in ("precision", "recall", "f1-score")
        }
        report[avg]["support"] = n
    return report
