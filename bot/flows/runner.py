"""Running flows (issue 6): the interpreter, its turn policy and its outreach in one object.

- :mod:`bot.flows.interpreter`: the step machine and a flow's state;
- :mod:`bot.flows.turns`: the engine policy and after-turn hook (the person wrote);
- :mod:`bot.flows.outreach`: flows started or resumed outside a turn, through the outbox.
"""

from __future__ import annotations

from bot.flows.interpreter import MAX_STEPS_PER_RUN, PENDING_FOR, Interpreter, Run
from bot.flows.outreach import FlowOutreach
from bot.flows.turns import TurnPolicy

__all__ = ["MAX_STEPS_PER_RUN", "PENDING_FOR", "FlowRunner", "Interpreter", "Run"]


class FlowRunner(TurnPolicy, FlowOutreach):
    """The lifecycle feature's flows: ``policy``/``prefetch``/``after_turn`` for the engine,
    ``trigger_outside``/``run_due``/``expire`` for events, stage changes and the jobs."""
