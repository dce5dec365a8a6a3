"""The fusion of the two tiers: the n-gram model's probabilities and the semantic head's,
mixed by a weight that cross-validation chooses, and what the calibrator sees of a parse."""

from __future__ import annotations

import numpy as np

from bot.nlu.semantic import SemanticHead, features

FUSION_WEIGHT = 0.5  # the semantic head's share of the fused probabilities, without calibration
FUSION_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # ... chosen among by cross-validation

HeldOut = tuple[SemanticHead, np.ndarray, np.ndarray, int]  # head, n-gram p, embedding, gold


def fuse(
    weight: float, head: SemanticHead, p_ng: np.ndarray, e: np.ndarray
) -> tuple[np.ndarray, list[float], float]:
    """The fused probabilities of a text (n-gram ``p_ng``, embedding ``e``, the head's share
    ``weight``), what the calibrator sees of them, and the text's similarity to the nearest
    training example."""
    p_sem = head.proba(e)
    p = np.asarray(weight * p_sem + (1.0 - weight) * p_ng, dtype=np.float64)
    top = int(np.argmax(p))
    near_top, near_all = head.nearest(e, top)
    # the head's and the n-gram model's own belief in the fused top intent, and whether
    # they agree: CV share answered at 0.9 on the demo content 0.67 -> 0.70
    agree = float(int(np.argmax(p_sem)) == int(np.argmax(p_ng)))
    extra = [near_top, near_all, float(p_sem[top]), float(p_ng[top]), agree]
    return p, features(p, extra), near_all


def best_weight(held_out: list[HeldOut]) -> float:
    """The semantic head's share of the fused probabilities that parses the most out-of-fold
    examples right (ties: the one nearest 0.5): few examples per intent want more of the
    encoder, thousands more of the n-gram model."""
    if not held_out:
        return FUSION_WEIGHT
    sem = [head.proba(e) for head, _, e, _ in held_out]  # a fold may lack an intent: lists

    def right(w: float) -> int:
        return sum(
            int(np.argmax(w * s + (1.0 - w) * p_ng)) == gold
            for s, (_, p_ng, _, gold) in zip(sem, held_out, strict=True)
        )

    return max(FUSION_WEIGHTS, key=lambda w: (right(w), -abs(w - FUSION_WEIGHT)))
