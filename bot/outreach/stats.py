"""What one round of proactive work did, for every feature (prompts, internal updates)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields


@dataclass
class RoundStats:
    """Counts of one round; ``skipped`` by reason, ``notes`` for the operator."""

    scheduled: int = 0
    expanded: int = 0
    sent: int = 0
    deferred: int = 0
    cancelled: int = 0
    held: int = 0
    digests: int = 0
    channel_posts: int = 0
    batches: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def skips(self) -> int:
        return sum(self.skipped.values())

    @property
    def processed(self) -> int:
        """Due items decided this round (sent, deferred, cancelled, held or skipped)."""
        return self.sent + self.deferred + self.cancelled + self.held + self.skips

    @property
    def queued(self) -> int:
        """Messages written to the outbox this round."""
        return self.sent + self.digests + self.channel_posts

    def add(self, other: RoundStats) -> None:
        for f in fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, int):
                setattr(self, f.name, mine + getattr(other, f.name))
        self.skipped.update(other.skipped)
        self.notes += other.notes
