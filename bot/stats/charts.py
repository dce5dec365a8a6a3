"""Every chart of the dashboard by its id (the page's order)."""

from __future__ import annotations

from bot.stats.chart import ChartFn
from bot.stats.conversations import containment, conversations, outcomes
from bot.stats.csat import csat, handoff_csat
from bot.stats.handoffs import handoff_times, handoffs
from bot.stats.internal import internal
from bot.stats.lifecycle import funnel, transitions
from bot.stats.prompts import prompt_skips, prompts

CHARTS: dict[str, ChartFn] = {
    "conversations": conversations,
    "containment": containment,
    "outcomes": outcomes,
    "handoffs": handoffs,
    "handoff_times": handoff_times,
    "csat": csat,
    "handoff_csat": handoff_csat,
    "funnel": funnel,
    "transitions": transitions,
    "prompts": prompts,
    "prompt_skips": prompt_skips,
    "internal": internal,
}
