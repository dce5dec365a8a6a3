"""The built-in policies every runtime has: FAQ answers (with clarifying and the offer of a
person), "was this helpful?" feedback, and "stop" (marketing opt-out)."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.engine.turn import FALLBACK, Turn
from bot.nlu.foreign import ENDONYMS
from bot.storage.models import Message
from bot.types import Button, Outbound

# --- built-in policies ------------------------------------------------------------------


async def feedback_policy(turn: Turn) -> bool:
    """ "Was this helpful?" answers: stored on the latest answer of that topic."""
    if turn.intent not in ("feedback_helpful", "feedback_not_helpful"):
        return False
    topic = turn.entities.get("topic")
    value = "helpful" if turn.intent == "feedback_helpful" else "not_helpful"
    if topic:
        answer = (
            await turn.session.execute(
                select(Message)
                .where(
                    Message.contact_id == turn.contact.id,
                    Message.direction == "out",
                    Message.intent == str(topic),
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if answer is not None:
            answer.feedback = value
    if value == "helpful":
        turn.say("utter_feedback_thanks")
    else:
        turn.replies.append(
            Outbound(
                text=turn.text("utter_feedback_sorry"),
                buttons=(
                    Button(turn.text("utter_button_human"), "/request_human"),
                    Button(turn.text("utter_button_rephrase"), "/rephrase"),
                ),
            )
        )
    turn.answer_meta.update(intent=turn.intent, confidence=1.0, feedback=value, topic=topic)
    return True


STOP_WORDS = {"stop", "/stop", "stopp", "unsubscribe", "leiratkozom", "avsluta", "wypisz"}


COMMAND_INTENTS = {"opt_out", "feedback_helpful", "feedback_not_helpful", "csat"}
"""Intents that are commands, confirmed whoever has the conversation (a person or the bot)."""


def is_opt_out(turn: Turn) -> bool:
    said = turn.inbound.text.strip().casefold().rstrip("!.")
    return turn.intent == "opt_out" or said in STOP_WORDS


def is_command(turn: Turn) -> bool:
    """ "stop" and the buttons that answer the bot (feedback, CSAT)."""
    return turn.intent in COMMAND_INTENTS or is_opt_out(turn)


async def opt_out_policy(turn: Turn) -> bool:
    """ "stop" (any shipped language, ``/stop``, or the ``opt_out`` intent): no more marketing,
    at once and on every channel. Service messages (answers, order updates) still arrive."""
    if not is_opt_out(turn):
        return False
    c = turn.contact
    if not c.marketing_opt_out:
        c.marketing_opt_out = True
        c.marketing_opt_out_at = turn.now
        await turn.engine.signals.opted_out.send(
            session=turn.session, contact=c, channel=turn.inbound.channel, now=turn.now
        )
    turn.say("utter_opted_out")
    turn.answer_meta.update(intent="opt_out", confidence=turn.confidence)
    return True


async def faq_policy(turn: Turn) -> bool:
    """Answer from the responses: ``faq/<topic>`` -> ``utter_faq/<topic>``, ``x`` -> ``utter_x``;
    unsure -> clarify with the nearest topics; unsure twice -> offer a person."""
    intent, conf = turn.intent, turn.confidence
    conv = turn.conversation
    turn.answer_meta.update(intent=intent, confidence=conf)
    if intent == "rephrase":
        turn.say("utter_rephrase")
        return True
    if intent == "clarify_none":  # "None of these": a person (or an e-mail), not a dead end
        conv.unsure_streak = 0
        turn.replies.append(turn.engine.offer_person(turn))
        turn.answer_meta["fallback"] = "offer_human"
        return True
    if turn.parse.get("language_not_served"):
        names = ", ".join(ENDONYMS.get(lang, lang) for lang in turn.engine.languages)
        turn.say("utter_language_not_served", languages=names)
        turn.answer_meta["fallback"] = "language_not_served"
        return True
    if intent != FALLBACK:
        name = f"utter_{intent}"
        if turn.engine.responses.has(name, turn.language):
            conv.unsure_streak = 0
            out = turn.say(name)
            if out is not None and intent.startswith("faq/"):
                turn.replies[-1] = Outbound(
                    text=out.text,
                    buttons=out.buttons,
                    metadata={"ask_feedback": True},
                )
            return True
    # unsure, or an intent with no response of its own
    conv.unsure_streak = (conv.unsure_streak or 0) + 1
    if conv.unsure_streak >= 2:
        conv.unsure_streak = 0
        turn.replies.append(turn.engine.offer_person(turn))
        turn.answer_meta["fallback"] = "offer_human"
        return True
    # staff can take over (the handoff feature is set up): a person is one of the choices
    person = "handoff" in turn.engine.policy_names
    if turn.parse.get("out_of_scope"):
        # far from every topic: say so honestly rather than guess three topics
        buttons = [Button(turn.text("utter_button_human"), "/request_human")] if person else []
        turn.replies.append(Outbound(text=turn.text("utter_out_of_scope"), buttons=tuple(buttons)))
        turn.answer_meta["fallback"] = "out_of_scope"
        return True
    candidates = [
        r["name"]
        for r in turn.parse.get("intent_ranking", [])
        if r["name"] != FALLBACK
        and turn.engine.responses.has(f"utter_{r['name']}", turn.language)
        # topics, not small talk: a FAQ answer or a topic the shop gave a button title
        and (
            r["name"].startswith("faq/")
            or turn.engine.responses.has(f"utter_ask_{r['name']}", turn.language)
        )
    ][:3]
    if candidates:
        topic_title = turn.engine.responses.topic_title
        buttons = [
            Button(topic_title(c, turn.language, slots=turn.slots), f"/{c}") for c in candidates
        ]
        if person:
            buttons.append(Button(turn.text("utter_button_human"), "/request_human"))
        buttons.append(Button(turn.text("utter_clarify_none"), "/clarify_none"))
        turn.replies.append(Outbound(text=turn.text("utter_clarify"), buttons=tuple(buttons)))
        turn.answer_meta["fallback"] = "clarify"
    else:
        turn.say("utter_default")
        turn.answer_meta["fallback"] = "default"
    return True


def offer_person(turn: Turn) -> Outbound:
    """The offer of a person from the team (the handoff feature knows when one is there)."""
    return Outbound(
        text=turn.text("utter_offer_human"),
        buttons=(
            Button(turn.text("utter_button_human"), '/request_human{"reason": "unsure"}'),
            Button(turn.text("utter_button_rephrase"), "/rephrase"),
        ),
    )


async def feedback_buttons_hook(turn: Turn) -> None:
    """After a FAQ answer, ask "Was this helpful?" with Yes/No buttons."""
    for r in list(turn.replies):
        if r.metadata.get("ask_feedback"):
            topic = json.dumps({"topic": turn.intent})
            turn.replies.append(
                Outbound(
                    text=turn.text("utter_ask_feedback"),
                    buttons=(
                        Button(turn.text("utter_button_yes"), f"/feedback_helpful{topic}"),
                        Button(turn.text("utter_button_no"), f"/feedback_not_helpful{topic}"),
                    ),
                    metadata={"intent": "feedback_question", "confidence": None},
                )
            )
            return
