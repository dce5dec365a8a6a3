"""The engine: one turn of a conversation, the same for every channel (design §1).

- :mod:`bot.engine.turn`: what a policy sees (:class:`Turn`, its typed state) and the
  extension points' shapes;
- :mod:`bot.engine.core`: :class:`Engine`, which batches turns (group commit) and runs the
  policies;
- :mod:`bot.engine.writer`: the one way to queue outbound messages (transcript + outbox);
- :mod:`bot.engine.policies`: the built-in policies (FAQ, feedback, opt-out).
"""

from bot.engine.core import Engine
from bot.engine.policies import (
    STOP_WORDS,
    faq_policy,
    feedback_buttons_hook,
    feedback_policy,
    is_command,
    offer_person,
    opt_out_policy,
)
from bot.engine.turn import (
    FALLBACK,
    NLU,
    Policy,
    StateKey,
    Turn,
    TurnResult,
    TurnState,
    parse_payload,
)
from bot.engine.writer import Reply, replies

__all__ = [
    "FALLBACK",
    "NLU",
    "STOP_WORDS",
    "Engine",
    "Policy",
    "Reply",
    "StateKey",
    "Turn",
    "TurnResult",
    "TurnState",
    "faq_policy",
    "feedback_buttons_hook",
    "feedback_policy",
    "is_command",
    "offer_person",
    "opt_out_policy",
    "parse_payload",
    "replies",
]
