"""What employees say to the bot in a direct message, and the buttons they press.

"what's new?", "what did I miss?", "send me launch notes", "less please" (in every shipped
language), plus the payloads of the update buttons (``/internal_feedback{...}``) and of pulse
surveys (``/internal_pulse{...}``), whichever channel they come back through.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.internal.models import Employee, Update
from bot.internal.render import FEEDBACK_INTENT, PULSE_INTENT, Item
from bot.matcher import fold
from bot.types import Outbound

if TYPE_CHECKING:
    from bot.engine import Policy, Turn
    from bot.internal.service import InternalService

_END = r"[\s?!.]*$"
WHATS_NEW = re.compile(
    r"^(hey |hi |so )?(what'?s new|whats new|what is new|anything new|any news|news"
    r"|was gibt'?s neues|was ist neu|gibt es neuigkeiten|neuigkeiten"
    r"|mi ujsag|mi az uj|van valami uj"
    r"|vad ar nytt|nagot nytt|nyheter"
    r"|co nowego|co slychac)" + _END
)
MISSED = re.compile(
    r"(what did i miss|what have i missed|what i missed|catch me up"
    r"|was habe ich verpasst|was hab ich verpasst"
    r"|mit hagytam ki|mirol maradtam le"
    r"|vad har jag missat|vad missade jag"
    r"|co mnie ominel[oa]|co przegapil[ae]m)"
)
SUBSCRIBE = re.compile(
    r"^(please |pls |bitte |kerlek |snalla |prosze )?"
    r"(send me|subscribe me to|subscribe to|subscribe|i want|more"
    r"|schick mir|schicke mir|sende mir|abonnieren"
    r"|kuldj|kuldd"
    r"|skicka mig|skicka"
    r"|wysy[lł]aj mi|przysy[lł]aj mi|wy[sś]lij mi)\s+(?P<what>.+?)" + _END
)
LESS = re.compile(
    r"^(less|fewer|fewer messages|less please|less of this|too many|too much"
    r"|weniger|weniger bitte"
    r"|kevesebb|kevesebbet"
    r"|mindre|mindre tack"
    r"|mniej|mniej prosze)" + _END
)
LESS_TOPIC = re.compile(
    r"^(less|fewer|no more|weniger|keine|kevesebb|nincs tobb|mindre|inga fler|mniej|bez)\s+"
    r"(?P<what>.+?)( please| bitte| tack| prosze)?" + _END
)


def internal_policy(service: InternalService) -> Policy:
    """The engine policy (priority 200: after opt-out and feedback, before the FAQ)."""

    async def policy(turn: Turn) -> bool:
        if turn.intent in (FEEDBACK_INTENT, PULSE_INTENT):
            return await _button(service, turn)
        if turn.inbound.channel != service.channel:
            return False
        emp = await service.employee_by_slack(turn.session, turn.inbound.external_id)
        if emp is None or not emp.active:
            return False
        said = fold(turn.inbound.text).replace("\u2019", "'").strip()
        lang = emp.language or turn.language
        if MISSED.search(said):
            reply, intent = await _missed(service, turn, emp, lang), "internal/missed"
        elif WHATS_NEW.match(said):
            reply, intent = await _whats_new(service, turn, emp, lang), "internal/whats_new"
        elif m := LESS.match(said):
            reply, intent = await _less(service, turn, emp, lang, None), "internal/less"
        elif (m := LESS_TOPIC.match(said)) and service.topic_of(m.group("what")):
            topic = service.topic_of(m.group("what"))
            reply, intent = await _less(service, turn, emp, lang, topic), "internal/less"
        elif m := SUBSCRIBE.match(said):
            reply, intent = (
                await _subscribe(service, turn, emp, lang, m.group("what")),
                ("internal/subscribe"),
            )
        else:
            return False
        turn.replies.append(Outbound(text=reply))
        turn.answer_meta.update(intent=intent, confidence=1.0)
        return True

    return policy


async def _employee(service: InternalService, turn: Turn) -> Employee | None:
    emp = await service.employee_by_contact(turn.session, turn.contact.id)
    if emp is None and turn.inbound.channel == service.channel:
        emp = await service.employee_by_slack(turn.session, turn.inbound.external_id)
    return emp


async def _button(service: InternalService, turn: Turn) -> bool:
    emp = await _employee(service, turn)
    e = turn.entities
    if emp is None:
        return False
    key = f"msg:{turn.message.id}"
    value = str(e.get("value", ""))
    try:
        if turn.intent == FEEDBACK_INTENT:
            text = await service.feedback(
                turn.session, emp, int(e["update"]), value, event_key=key, now=turn.now
            )
        else:
            text = await service.pulse_answer(
                turn.session, emp, int(e["survey"]), value, event_key=key, now=turn.now
            )
    except (KeyError, TypeError, ValueError):
        return False
    if text:
        turn.replies.append(Outbound(text=text))
    turn.answer_meta.update(intent=turn.intent, confidence=1.0)
    return True


def _line(item: Item) -> str:
    line = f"• *{item.title}*: {item.summary()}"
    if item.links:
        line += f" ({item.links[0]['url']})"
    return line


async def _whats_new(service: InternalService, turn: Turn, emp: Employee, lang: str) -> str:
    rows = await service.recent_for(turn.session, emp, turn.now, days=14)
    if not rows:
        return service.texts("whats_new_none", lang, days=14)
    lines = [service.texts("whats_new_header", lang)]
    for d, u in rows[:5]:
        lines.append(_line(await service.item(turn.session, u, d.language or lang)))
    return "\n".join(lines)


async def _missed(service: InternalService, turn: Turn, emp: Employee, lang: str) -> str:
    rows = await service.missed_for(turn.session, emp, turn.now)
    if not rows:
        return service.texts("missed_none", lang)
    lines = [service.texts("missed_header", lang)]
    for d, u in rows[:5]:
        lines.append(_line(await service.item(turn.session, u, d.language or lang)))
    return "\n".join(lines)


async def _known_topics(turn: Turn) -> list[str]:
    rows = await turn.session.execute(select(Update.topic).where(Update.topic.is_not(None)))
    return sorted({str(t) for t in rows.scalars() if t})


async def _subscribe(
    service: InternalService, turn: Turn, emp: Employee, lang: str, what: str
) -> str:
    known = await _known_topics(turn)
    topic = service.topic_of(what, known)
    if topic is None:
        topics = sorted({*service.config.topics, *known})
        return service.texts("subscribe_which", lang, topics=", ".join(topics))
    emp.subscriptions = sorted({*(emp.subscriptions or []), topic})
    emp.opted_down = [t for t in emp.opted_down or [] if t != topic]
    emp.updated_at = turn.now
    return service.texts("subscribed", lang, topic=topic)


async def _less(
    service: InternalService, turn: Turn, emp: Employee, lang: str, topic: str | None
) -> str:
    if topic is None:
        recent = await service.recent_for(turn.session, emp, turn.now, days=30)
        topic = next((u.topic for _, u in recent if u.topic), None)
    if topic is not None:
        emp.opted_down = sorted({*(emp.opted_down or []), topic})
        emp.subscriptions = [t for t in emp.subscriptions or [] if t != topic]
        emp.updated_at = turn.now
        return service.texts("less_topic", lang, topic=topic)
    cap = max(1, min(emp.weekly_cap or service.config.weekly_cap, service.config.weekly_cap) - 1)
    emp.weekly_cap = cap
    emp.updated_at = turn.now
    return service.texts("less_cap", lang, cap=cap)
