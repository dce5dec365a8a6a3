"""The semantic tier: a linear head on frozen sentence embeddings, and the calibration that
turns a parse's scores into P(top intent is right).

- :class:`SemanticHead`: multinomial logistic regression on the encoder's (L2-normalised)
  embeddings of the same training pool as the n-gram model (the language's examples, the other
  languages' examples of the same intents, the answers of ``responses.yml``), plus the
  training embeddings themselves for the geometry (cosine to the nearest example).
- :class:`Calibrator`: logistic regression on a parse's scores (top probability, margin,
  similarity to the nearest example), fitted at training time on cross-validation
  out-of-fold parses: its output is the ``confidence`` ``/model/parse`` returns.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression


class SemanticHead:
    def __init__(self, c: float = 20.0) -> None:
        self.c = c
        self.classes: list[str] = []
        self.coef = np.zeros((0, 0), dtype=np.float32)
        self.intercept = np.zeros(0, dtype=np.float32)
        self.examples = np.zeros((0, 0), dtype=np.float32)  # n x dim
        self.example_class = np.zeros(0, dtype=np.int32)

    def fit(
        self,
        emb: np.ndarray,
        labels: list[str],
        classes: list[str],
        weights: list[float] | None = None,
    ) -> SemanticHead:
        """``classes``: the order of the n-gram classifier's classes (every label is one)."""
        self.classes = list(classes)
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[lab] for lab in labels], dtype=np.int32)
        lr = LogisticRegression(C=self.c, max_iter=2000)
        lr.fit(emb, y, sample_weight=weights)
        coef = np.zeros((len(self.classes), emb.shape[1]), dtype=np.float32)
        intercept = np.full(len(self.classes), -1e4, dtype=np.float32)
        seen = [int(k) for k in lr.classes_]
        if len(seen) == 2:  # binary: one score for classes_[1]
            coef[seen[1]], intercept[seen[1]] = lr.coef_[0] / 2, lr.intercept_[0] / 2
            coef[seen[0]], intercept[seen[0]] = -lr.coef_[0] / 2, -lr.intercept_[0] / 2
        else:
            coef[seen], intercept[seen] = lr.coef_, lr.intercept_
        self.coef, self.intercept = coef, intercept
        self.examples = np.ascontiguousarray(emb, dtype=np.float32)
        self.example_class = y
        return self

    def proba(self, e: np.ndarray) -> np.ndarray:
        """Class probabilities for one embedding."""
        s = self.coef @ e + self.intercept
        s = np.exp(s - s.max())
        return np.asarray(s / s.sum(), dtype=np.float64)

    def nearest(self, e: np.ndarray, cls: int) -> tuple[float, float]:
        """Cosine to the nearest training example of class ``cls``, and of any class."""
        sims = self.examples @ e
        mine = sims[self.example_class == cls]
        return (float(mine.max()) if mine.size else 0.0), float(sims.max())


def features(p: np.ndarray, extra: list[float]) -> list[float]:
    """What the calibrator sees of a parse: top probability, margin to the second, and
    ``extra`` (similarity to the nearest example of the top intent and of any intent, the
    semantic head's and the n-gram model's own probability of the top intent, 1.0 when their
    top intents agree). Not the n-gram
    similarity: no held-out question is a training example, so its weight came out negative
    and a question asked exactly as written in the training data lost confidence."""
    top = np.sort(p)[::-1]
    second = float(top[1]) if len(top) > 1 else 0.0
    return [float(top[0]), float(top[0]) - second, *extra]


class Calibrator:
    """P(top intent is right) from :func:`features`, fitted on out-of-fold parses; ``c``: the
    inverse strength of the logistic regression's L2 penalty."""

    def __init__(self, c: float = 1.0) -> None:
        self.c = c
        self.coef = np.zeros(0)
        self.intercept = 0.0
        self.constant: float | None = None

    def fit(self, x: list[list[float]], right: list[bool]) -> Calibrator:
        y = np.array(right, dtype=np.int32)
        if len(set(y.tolist())) < 2:  # all right (or all wrong): nothing to separate
            self.constant = float(y.mean()) if len(y) else 0.5
            return self
        lr = LogisticRegression(C=self.c, max_iter=5000)
        lr.fit(np.array(x, dtype=np.float64), y)
        self.coef = lr.coef_[0].astype(np.float64)
        self.intercept = float(lr.intercept_[0])
        return self

    def __call__(self, feats: list[float]) -> float:
        if self.constant is not None:
            return self.constant
        z = float(np.dot(self.coef, feats) + self.intercept)
        return float(1.0 / (1.0 + np.exp(-z)))


def reliability(
    confidences: list[float], right: list[bool], bins: int = 10
) -> tuple[list[tuple[float, float, int, float]], float]:
    """A reliability table ``[(bin low, bin high, count, share right)]`` and the expected
    calibration error (count-weighted |mean confidence - share right|)."""
    c = np.array(confidences, dtype=np.float64)
    r = np.array(right, dtype=np.float64)
    rows: list[tuple[float, float, int, float]] = []
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        mask = (c >= lo) & ((c < hi) if b < bins - 1 else (c <= hi))
        n = int(mask.sum())
        if n:
            acc = float(r[mask].mean())
            rows.append((lo, hi, n, acc))
            ece += n / len(c) * abs(float(c[mask].mean()) - acc)
    return rows, ece
