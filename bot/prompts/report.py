"""``concierge report prompts``: sends, skips by reason, conversions, lift against holdout.

Exposures are the sends plus the holdout contacts (who would have been sent the prompt: the
holdout is decided after every guard rail). A conversion is the prompt's goal event within its
window after an exposure. Lift is the treated conversion rate minus the holdout's, with a 95%
Newcombe interval (sound for small groups and low rates).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.prompts.experiments import HOLDOUT, Interval, difference_ci
from bot.prompts.models import PromptConversion, PromptSend, PromptSkip


@dataclass
class Group:
    exposed: int = 0
    converted: int = 0

    @property
    def rate(self) -> float | None:
        return self.converted / self.exposed if self.exposed else None


@dataclass
class PromptFigures:
    prompt_id: str
    sends: Counter[str] = field(default_factory=Counter)  # by channel
    skips: Counter[str] = field(default_factory=Counter)  # by reason (holdout included)
    groups: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))

    @property
    def sent(self) -> int:
        return sum(self.sends.values())

    @property
    def treated(self) -> Group:
        g = Group()
        for name, x in self.groups.items():
            if name != HOLDOUT:
                g.exposed += x.exposed
                g.converted += x.converted
        return g

    @property
    def holdout(self) -> Group:
        return self.groups.get(HOLDOUT) or Group()

    @property
    def lift(self) -> float | None:
        t, h = self.treated.rate, self.holdout.rate
        return None if t is None or h is None else t - h

    @property
    def lift_ci(self) -> Interval | None:
        t, h = self.treated, self.holdout
        return difference_ci(t.converted, t.exposed, h.converted, h.exposed)

    def as_dict(self) -> dict[str, Any]:
        ci = self.lift_ci
        return {
            "prompt": self.prompt_id,
            "sent": self.sent,
            "sent_by_channel": dict(self.sends),
            "skipped": dict(self.skips),
            "groups": {
                k: {"exposed": g.exposed, "converted": g.converted, "rate": g.rate}
                for k, g in sorted(self.groups.items())
            },
            "lift": self.lift,
            "lift_ci95": [ci.low, ci.high] if ci else None,
        }


async def prompt_report(
    session: AsyncSession, *, since: datetime | None = None, prompt: str | None = None
) -> list[PromptFigures]:
    out: dict[str, PromptFigures] = {}

    def fig(pid: str) -> PromptFigures:
        if pid not in out:
            out[pid] = PromptFigures(pid)
        return out[pid]

    def counts(*columns: Any, at: Any) -> Select[Any]:
        """Rows of ``columns`` (the prompt id first) and their count, in the asked range."""
        q = select(*columns, func.count()).group_by(*columns)
        if since is not None:
            q = q.where(at >= since)
        if prompt is not None:
            q = q.where(columns[0] == prompt)
        return q

    sends = counts(
        PromptSend.prompt_id, PromptSend.channel, PromptSend.variant, at=PromptSend.sent_at
    )
    for pid, channel, variant, n in await session.execute(sends):
        f = fig(pid)
        f.sends[channel] += n
        f.groups[variant or "a"].exposed += n
    for pid, reason, n in await session.execute(
        counts(PromptSkip.prompt_id, PromptSkip.reason, at=PromptSkip.at)
    ):
        f = fig(pid)
        f.skips[reason] += n
        if reason == HOLDOUT:
            f.groups[HOLDOUT].exposed += n
    for pid, variant, n in await session.execute(
        counts(PromptConversion.prompt_id, PromptConversion.variant, at=PromptConversion.exposed_at)
    ):
        fig(pid).groups[variant].converted += n
    return [out[k] for k in sorted(out)]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}"


def format_report(figures: list[PromptFigures]) -> str:
    """A plain-text report, one block per prompt."""
    if not figures:
        return "No prompts were sent or skipped yet.\n"
    lines: list[str] = []
    for f in figures:
        lines.append(f"{f.prompt_id}")
        by_channel = ", ".join(f"{c} {n}" for c, n in sorted(f.sends.items())) or "-"
        lines.append(f"  sent        {f.sent}  ({by_channel})")
        skipped = ", ".join(f"{r} {n}" for r, n in f.skips.most_common()) or "-"
        lines.append(f"  skipped     {sum(f.skips.values())}  ({skipped})")
        for name, g in sorted(f.groups.items()):
            lines.append(
                f"  {name:<11} exposed {g.exposed:>6}  converted {g.converted:>6}  "
                f"rate {_pct(g.rate):>6}"
            )
        if f.holdout.exposed:
            ci = f.lift_ci
            lift = f.lift
            if lift is not None and ci is not None:
                lines.append(
                    f"  lift        {_pp(lift)} points vs holdout "
                    f"(95% CI {_pp(ci.low)} to {_pp(ci.high)})"
                )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
