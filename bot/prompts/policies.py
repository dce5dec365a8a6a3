"""Turn policies of the prompts feature: NPS answers, and "stop" that no policy may swallow."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.engine import STOP_WORDS, Policy, Turn
from bot.prompts.models import PromptNps
from bot.types import Button, Outbound

if TYPE_CHECKING:
    from bot.prompts.service import PromptService

_NUMBER = re.compile(r"^\s*(\d{1,2})\s*(/\s*10)?\s*[.!]?\s*$")
NPS_ANSWER_WINDOW = timedelta(days=7)


def nps_policy(svc: PromptService) -> Policy:
    from bot.prompts.service import nps_category

    async def policy(turn: Turn) -> bool:
        if turn.intent == "nps_dismiss":
            turn.say("utter_prompt_nps_dismissed")
            turn.answer_meta.update(intent="nps_dismiss", confidence=1.0)
            return True
        score, prompt_id = _score(turn)
        if score is None:
            return False
        category = nps_category(score)
        state = dict(turn.conversation.state or {})
        pending = state.pop("nps", None)
        turn.conversation.state = state
        prompt_id = prompt_id or (pending or {}).get("prompt") or "nps"
        answer = PromptNps(
            contact_id=turn.contact.id,
            prompt_id=str(prompt_id)[:64],
            score=score,
            category=category,
            channel=turn.inbound.channel,
            at=turn.now,
        )
        turn.session.add(answer)
        await turn.session.flush()
        if category == "detractor":  # offered a person, not a review or a referral
            turn.replies.append(
                Outbound(
                    text=turn.text("utter_prompt_nps_detractor"),
                    buttons=(
                        Button(
                            turn.text("utter_button_human"),
                            '/request_human{"reason": "nps_detractor"}',
                        ),
                        Button(turn.text("utter_prompt_button_no_thanks"), "/nps_dismiss"),
                    ),
                )
            )
        else:
            turn.say(f"utter_prompt_nps_{category}")
        turn.answer_meta.update(intent="nps", confidence=1.0, score=score, category=category)
        await svc.nps_answered(turn.session, turn.contact, answer.id, category, turn.now)
        return True

    return policy


def _score(turn: Turn) -> tuple[int | None, str | None]:
    if turn.intent == "nps":
        try:
            score = int(turn.entities.get("score"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None, None
        prompt = turn.entities.get("prompt")
        return (score if 0 <= score <= 10 else None), (str(prompt) if prompt else None)
    pending = (turn.conversation.state or {}).get("nps")
    if not pending or turn.inbound.payload is not None:
        return None, None
    try:
        asked = datetime.fromisoformat(str(pending.get("at")))
    except ValueError:
        return None, None
    if turn.now - asked > NPS_ANSWER_WINDOW:
        return None, None
    m = _NUMBER.match(turn.inbound.text)
    if not m or not 0 <= int(m.group(1)) <= 10:
        return None, None
    return int(m.group(1)), str(pending.get("prompt") or "")


async def stop_hook(turn: Turn) -> None:
    """ "stop" answered by another policy (e.g. while staff have the conversation) still opts
    out of marketing, at once: an objection to marketing is absolute (design §7)."""
    if turn.answer_meta.get("policy") == "opt_out" or turn.contact.marketing_opt_out:
        return
    said = turn.inbound.text.strip().casefold().rstrip("!.")
    if said not in STOP_WORDS and turn.intent != "opt_out":
        return
    c = turn.contact
    c.marketing_opt_out = True
    c.marketing_opt_out_at = turn.now
    await turn.engine.signals.opted_out.send(
        session=turn.session, contact=c, channel=turn.inbound.channel, now=turn.now
    )
