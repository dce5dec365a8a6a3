"""The prompt charts: ``prompts``, per prompt sent, skipped, exposed and converted per group,
the lift of the treated group's conversion rate over the holdout's with its 95% interval
(Newcombe, as ``concierge report prompts``); ``prompt_skips``, skips by reason."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.prompts.experiments import HOLDOUT, difference_ci
from bot.prompts.models import PromptConversion, PromptSend, PromptSkip
from bot.stats.chart import Chart
from bot.stats.filters import Filters
from bot.stats.query import in_range, memo, ratio, rounded
from bot.storage.models import Contact

COLUMNS = (
    "prompt",
    "sent",
    "skipped",
    "treated_exposed",
    "treated_converted",
    "treated_rate",
    "holdout_exposed",
    "holdout_converted",
    "holdout_rate",
    "lift",
    "lift_ci95_low",
    "lift_ci95_high",
)

Figures = tuple[dict[str, dict[str, Any]], dict[str, Counter[str]]]


def _contact_subset(f: Filters) -> Any:
    """Contacts of the language filter (prompts have no language of their own)."""
    return select(Contact.id).where(Contact.language == f.language)


async def _prompt_figures(s: AsyncSession, f: Filters) -> Figures:
    return await memo(s, ("prompt_figures", f), lambda: _prompt_figures_now(s, f))


async def _prompt_figures_now(s: AsyncSession, f: Filters) -> Figures:
    figs: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"sent": 0, "groups": defaultdict(lambda: [0, 0])}
    )
    skips: dict[str, Counter[str]] = defaultdict(Counter)
    q1 = select(PromptSend.prompt_id, PromptSend.variant, func.count()).where(
        in_range(PromptSend.sent_at, f)
    )
    if f.channel:
        q1 = q1.where(PromptSend.channel == f.channel)
    if f.language:
        q1 = q1.where(PromptSend.contact_id.in_(_contact_subset(f)))
    for pid, variant, n in await s.execute(q1.group_by(PromptSend.prompt_id, PromptSend.variant)):
        figs[pid]["sent"] += n
        figs[pid]["groups"][variant or "a"][0] += n
    q2 = select(PromptSkip.prompt_id, PromptSkip.reason, func.count()).where(
        in_range(PromptSkip.at, f)
    )
    if f.language:
        q2 = q2.where(PromptSkip.contact_id.in_(_contact_subset(f)))
    for pid, reason, n in await s.execute(q2.group_by(PromptSkip.prompt_id, PromptSkip.reason)):
        skips[pid][reason] += n
        _ = figs[pid]
        if reason == HOLDOUT:
            figs[pid]["groups"][HOLDOUT][0] += n
    q3 = select(PromptConversion.prompt_id, PromptConversion.variant, func.count()).where(
        in_range(PromptConversion.exposed_at, f)
    )
    if f.language:
        q3 = q3.where(PromptConversion.contact_id.in_(_contact_subset(f)))
    for pid, variant, n in await s.execute(
        q3.group_by(PromptConversion.prompt_id, PromptConversion.variant)
    ):
        figs[pid]["groups"][variant][1] += n
    return figs, skips


async def prompts(s: AsyncSession, f: Filters) -> Chart:
    figs, skips = await _prompt_figures(s, f)
    rows: list[list[Any]] = []
    for pid in sorted(figs):
        g = figs[pid]["groups"]
        te = sum(v[0] for k, v in g.items() if k != HOLDOUT)
        tc = sum(v[1] for k, v in g.items() if k != HOLDOUT)
        he, hc = g.get(HOLDOUT, (0, 0))
        t_rate, h_rate = ratio(tc, te), ratio(hc, he)
        lift = None if t_rate is None or h_rate is None else t_rate - h_rate
        ci = difference_ci(tc, te, hc, he)
        rows.append(
            [
                pid,
                figs[pid]["sent"],
                sum(n for r, n in skips[pid].items() if r != HOLDOUT),
                te,
                tc,
                rounded(t_rate, 4),
                he,
                hc,
                rounded(h_rate, 4),
                rounded(lift, 4),
                rounded(ci.low, 4) if ci else None,
                rounded(ci.high, 4) if ci else None,
            ]
        )
    return Chart(
        "prompts",
        "Prompts: sent, skipped, converted; lift against the holdout (95% CI)",
        [*COLUMNS],
        rows,
        kind="bar",
        note="Skipped leaves out the holdout (the control group, exposed but not sent).",
    )


async def prompt_skips(s: AsyncSession, f: Filters) -> Chart:
    _, skips = await _prompt_figures(s, f)
    rows = [
        [pid, reason, n]
        for pid in sorted(skips)
        for reason, n in sorted(skips[pid].items(), key=lambda x: (-x[1], x[0]))
    ]
    return Chart(
        "prompt_skips",
        "Prompts skipped, by reason",
        ["prompt", "reason", "skips"],
        rows,
        kind="bar",
    )
