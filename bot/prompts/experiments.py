"""Experiment groups and the statistics of a report.

Assignment is a hash of (salt, prompt, contact): stable across processes and restarts, no
table needed to decide it (the table only records exposures for reports). The holdout share is
decided first, the variant among the rest by weight, from independent parts of the hash.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from bot.prompts.definitions import Prompt

HOLDOUT = "holdout"


def _units(salt: str, prompt_id: str, contact_id: int) -> tuple[float, float]:
    digest = hashlib.blake2b(f"{salt}:{prompt_id}:{contact_id}".encode(), digest_size=16).digest()
    a = int.from_bytes(digest[:8], "big") / 2**64
    b = int.from_bytes(digest[8:], "big") / 2**64
    return a, b


def assign(prompt: Prompt, contact_id: int, salt: str = "") -> str:
    """The contact's group for ``prompt``: a variant id, or ``"holdout"``."""
    first, second = _units(salt, prompt.id, contact_id)
    if prompt.holdout and first < prompt.holdout:
        return HOLDOUT
    if len(prompt.variants) == 1:
        return prompt.variants[0].id
    total = sum(v.weight for v in prompt.variants)
    edge = 0.0
    for v in prompt.variants:
        edge += v.weight / total
        if second < edge:
            return v.id
    return prompt.variants[-1].id


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, n: int, z: float = 1.96) -> Interval:
    """Wilson score interval of a proportion."""
    if n == 0:
        return Interval(0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def difference_ci(x1: int, n1: int, x0: int, n0: int, z: float = 1.96) -> Interval | None:
    """Newcombe's hybrid score interval for p1 - p0 (method 10): sound for small counts and
    rates near 0, where the plain Wald interval is not. ``None`` when a group is empty."""
    if n1 == 0 or n0 == 0:
        return None
    p1, p0 = x1 / n1, x0 / n0
    w1, w0 = wilson(x1, n1, z), wilson(x0, n0, z)
    d = p1 - p0
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w0.high - p0) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p0 - w0.low) ** 2)
    return Interval(low, high)
