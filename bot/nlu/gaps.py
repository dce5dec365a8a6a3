"""FAQ gaps: unanswered and low-confidence questions, grouped by similar wording."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from bot.nlu.text import fold, tokens
from bot.storage.db import Database
from bot.storage.models import Message


@dataclass
class Cluster:
    language: str
    example: str
    count: int = 0
    others: list[str] = field(default_factory=list)
    words: set[str] = field(default_factory=set)


def cluster(questions: list[tuple[str, str]], similarity: float = 0.5) -> list[Cluster]:
    """Greedy clustering by word overlap (Jaccard), within each language."""
    out: list[Cluster] = []
    for text, lang in questions:
        words = {w for w in tokens(fold(text)) if len(w) > 2}
        best, best_sim = None, 0.0
        for c in out:
            if c.language != lang or not words or not c.words:
                continue
            sim = len(words & c.words) / len(words | c.words)
            if sim > best_sim:
                best, best_sim = c, sim
        if best is not None and best_sim >= similarity:
            best.count += 1
            if text not in best.others and text != best.example:
                best.others.append(text)
        else:
            out.append(Cluster(lang, text, 1, [], words))
    return sorted(out, key=lambda c: -c.count)


async def find_gaps(database_url: str, top: int = 20) -> list[Cluster]:
    db = Database(database_url)
    try:
        async with db.session() as s:
            rows = (
                await s.execute(
                    select(Message.text, Message.language).where(
                        Message.direction == "in",
                        Message.intent == "nlu_fallback",
                        Message.payload.is_(None),
                    )
                )
            ).all()
    finally:
        await db.dispose()
    return cluster([(t, lang or "?") for t, lang in rows])[:top]
