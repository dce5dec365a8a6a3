"""The figures behind the staff dashboard (``/admin/dashboard``), one function a chart.

Every chart is a :class:`Chart`: a title, column names and rows of plain values, so the page
draws it, and ``/admin/stats/<chart>.csv`` / ``.json`` export exactly what is drawn. Days are
UTC calendar days; a range is ``start`` to ``end``, both days included.

What the charts count:

- ``conversations``: conversations with at least one message from the customer that day, and
  those messages.
- ``containment``: of those conversations, the ones no person was asked into (no handoff
  opened that day): answered by the assistant alone.
- ``outcomes``: the assistant's turns by outcome, from what the engine stores with each reply
  (``meta.policy`` and ``meta.fallback``): *answered*, *clarified* (topics offered to pick
  from), *fallback* (did not understand: default answer, out of scope, a person offered, a
  language not served, or an error), *handed off* (the handoff policy answered). A turn's
  replies share their conversation and time, so a turn counts once however many messages it
  sent.
- ``handoffs`` / ``handoff_times``: handoffs opened in the range by reason; minutes to the first
  staff answer and to resolution (median and 90th percentile, of those answered / resolved).
- ``csat``: the "was this helpful?" answers by day (stored on the answer they rate);
  ``handoff_csat``: the 1-5 ratings after a resolved handoff.
- ``funnel``: contacts by their current lifecycle stage; ``transitions``: stage moves a week
  (weeks start on Monday), by the stage moved to.
- ``prompts``: per prompt sent, skipped, exposed and converted per group, the lift of the
  treated group's conversion rate over the holdout's with its 95% interval (Newcombe, as
  ``concierge report prompts``); ``prompt_skips``: skips by reason.
- ``internal``: internal updates created in the range: people reached and engaged (a reaction
  or a button; Slack has no read receipts).

The modules: :mod:`~bot.stats.filters` (the range and filters a request asks for),
:mod:`~bot.stats.chart` (the :class:`Chart` and its CSV), :mod:`~bot.stats.query` (what the
queries share), :mod:`~bot.stats.turns` (the assistant's turns by outcome), one module per area
(:mod:`~bot.stats.conversations`, :mod:`~bot.stats.handoffs`, :mod:`~bot.stats.csat`,
:mod:`~bot.stats.lifecycle`, :mod:`~bot.stats.prompts`, :mod:`~bot.stats.internal`),
:mod:`~bot.stats.charts` (every chart by id), :mod:`~bot.stats.rollups` (the stored daily
figures) and :mod:`~bot.stats.rollup_job` (the job that builds them; ``setup`` registers it).
"""

from __future__ import annotations

from bot.stats.chart import Chart
from bot.stats.charts import CHARTS
from bot.stats.filters import FilterError, Filters
from bot.stats.rollup_job import RollupJob, setup
from bot.stats.rollups import CLOSED_AFTER, DONE, DailyStat, prepare

__all__ = [
    "CHARTS",
    "CLOSED_AFTER",
    "DONE",
    "Chart",
    "DailyStat",
    "FilterError",
    "Filters",
    "RollupJob",
    "prepare",
    "setup",
]
