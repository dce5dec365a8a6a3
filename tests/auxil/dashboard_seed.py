"""A small, exactly known history for the dashboard's figures (tests only).

Two days, 2026-03-02 and 2026-03-03 (UTC). Four contacts:

- c1 (en, web): day 1 asks twice (one answered FAQ turn with its "was this helpful?" question,
  one clarified turn), says the FAQ answer was helpful; day 2 one answered turn.
- c2 (de, telegram): day 1 one fallback turn (default answer), then asks for a person: handoff
  (reason asked) answered after 10 minutes, resolved after 60, rated 5.
- c3 (en, web): day 2 one fallback turn (out of scope) and one answered turn rated not helpful;
  a handoff (reason unsure) answered after 30 minutes, never resolved.
- c4 (en, telegram): no messages; stage purchase.

Stages now: c1 consideration, c2 purchase, c3 awareness, c4 purchase; transitions: c1
awareness->consideration on day 1, c2 awareness->purchase on day 2, c4 awareness->purchase on
day 2 (Monday 2026-03-02: all in one week).

Internal update ``spring`` (day 1): planned 3, reached 2, engaged 1.

Prompt ``cart``: sent to c1 and c3 (variant a), holdout c2 and c4 (skipped, reason holdout),
one more skip (quiet_hours) for c1; conversions: c1 (a) and c2 (holdout).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import Handoff
from bot.internal.models import Employee, EngagementEvent, Update, UpdateDelivery
from bot.lifecycle.models import StageTransition
from bot.prompts.models import PromptAction, PromptConversion, PromptSend, PromptSkip
from bot.storage.db import Database
from bot.storage.models import Contact, Conversation, Message

DAY1 = date(2026, 3, 2)
DAY2 = date(2026, 3, 3)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


async def seed(db: Database) -> dict[str, Any]:
    async with db.session() as s:
        return await _seed(s)


async def _seed(s: AsyncSession) -> dict[str, Any]:
    t0 = at(DAY1, 0)

    def contact(name: str, lang: str, channel: str, stage: str) -> Contact:
        c = Contact(
            display_name=name,
            language=lang,
            preferred_channel=channel,
            lifecycle_stage=stage,
            created_at=t0,
            updated_at=t0,
            attributes={},
        )
        s.add(c)
        return c

    c1 = contact("Ann", "en", "web", "consideration")
    c2 = contact("Bernd", "de", "telegram", "purchase")
    c3 = contact("Cleo", "en", "web", "awareness")
    c4 = contact("Dan", "en", "telegram", "purchase")
    await s.flush()
    convs: dict[int, Conversation] = {}
    for c, ch in ((c1, "web"), (c2, "telegram"), (c3, "web")):
        conv = Conversation(
            contact_id=c.id, last_channel=ch, created_at=t0, updated_at=t0, state={}
        )
        s.add(conv)
        convs[c.id] = conv
    await s.flush()

    def msg(
        c: Contact,
        when: datetime,
        direction: str,
        text: str,
        *,
        sender: str | None = None,
        meta: dict[str, Any] | None = None,
        intent: str | None = None,
        feedback: str | None = None,
    ) -> Message:
        m = Message(
            conversation_id=convs[c.id].id,
            contact_id=c.id,
            direction=direction,
            sender=sender or ("user" if direction == "in" else "bot"),
            channel="web" if c is not c2 else "telegram",
            text=text,
            language=c.language,
            intent=intent,
            meta=meta or {},
            feedback=feedback,
            created_at=when,
        )
        s.add(m)
        return m

    def turn(c: Contact, when: datetime, text: str, meta: dict[str, Any], n: int = 1) -> None:
        msg(c, when, "in", text, intent=meta.get("intent"))
        for i in range(n):
            msg(c, when, "out", f"reply {i}", meta=meta, intent=meta.get("intent"))

    faq = {"policy": "faq", "intent": "faq/shipping", "confidence": 0.9}
    # c1 day 1: an answered FAQ turn (answer + "was this helpful?"), a clarified turn
    msg(c1, at(DAY1, 9), "in", "where do you ship", intent="faq/shipping")
    msg(c1, at(DAY1, 9), "out", "We ship to the EU.", meta=faq, intent="faq/shipping",
        feedback="helpful")  # fmt: skip
    msg(c1, at(DAY1, 9), "out", "Was this helpful?",
        meta={**faq, "intent": "feedback_question"}, intent="feedback_question")  # fmt: skip
    turn(c1, at(DAY1, 10), "hmm", {"policy": "faq", "intent": "nlu_fallback",
                                   "fallback": "clarify"})  # fmt: skip
    turn(c1, at(DAY1, 10, 1), "/feedback_helpful", {"policy": "feedback",
                                                    "intent": "feedback_helpful"})  # fmt: skip
    # c2 day 1: fallback, then a handoff
    turn(c2, at(DAY1, 11), "bla", {"policy": "faq", "intent": "nlu_fallback",
                                   "fallback": "default"})  # fmt: skip
    turn(c2, at(DAY1, 11, 5), "human please", {"policy": "handoff", "intent": "request_human"})
    # c1 day 2: answered
    turn(c1, at(DAY2, 8), "returns?", {"policy": "faq", "intent": "faq/returns"})
    # c3 day 2: out of scope, then an answer rated not helpful; a flow turn of three messages
    turn(c3, at(DAY2, 9), "weather?", {"policy": "faq", "intent": "nlu_fallback",
                                       "fallback": "out_of_scope"})  # fmt: skip
    msg(c3, at(DAY2, 9, 5), "in", "warranty", intent="faq/warranty")
    msg(c3, at(DAY2, 9, 5), "out", "Two years.", meta={"policy": "faq",
        "intent": "faq/warranty"}, feedback="not_helpful")  # fmt: skip
    turn(c3, at(DAY2, 9, 30), "start tour", {"policy": "flows", "intent": "tour"}, n=3)
    # not turns: a staff reply and a scheduled prompt message
    msg(c2, at(DAY1, 11, 15), "out", "Hi, Anna here", sender="staff", meta={"staff_name": "A"})
    msg(c3, at(DAY2, 12), "out", "Your cart misses you", meta={"prompt": "cart"})

    s.add_all(
        [
            Handoff(
                contact_id=c2.id,
                conversation_id=convs[c2.id].id,
                reason="asked",
                language="de",
                channel="telegram",
                address="x",
                status="resolved",
                csat=5,
                created_at=at(DAY1, 11, 5),
                first_response_at=at(DAY1, 11, 15),
                resolved_at=at(DAY1, 12, 5),
            ),
            Handoff(
                contact_id=c3.id,
                conversation_id=convs[c3.id].id,
                reason="unsure",
                language="en",
                channel="web",
                address="y",
                status="assigned",
                created_at=at(DAY2, 9, 10),
                first_response_at=at(DAY2, 9, 40),
            ),
        ]
    )
    for c, frm, to, when in (
        (c1, "awareness", "consideration", at(DAY1, 9)),
        (c2, "awareness", "purchase", at(DAY2, 7)),
        (c4, "awareness", "purchase", at(DAY2, 7, 30)),
    ):
        s.add(
            StageTransition(
                contact_id=c.id,
                from_stage=frm,
                to_stage=to,
                cause="event",
                occurred_at=when,
                created_at=when,
            )
        )
    actions: dict[int, PromptAction] = {}
    for c in (c1, c2, c3, c4):
        a = PromptAction(
            contact_id=c.id,
            prompt_id="cart",
            instance_key="k1",
            due_at=at(DAY1, 12),
            status="sent",
            context={},
            created_at=t0,
            updated_at=t0,
        )
        s.add(a)
        actions[c.id] = a
    await s.flush()
    for c in (c1, c3):
        s.add(
            PromptSend(
                action_id=actions[c.id].id,
                contact_id=c.id,
                prompt_id="cart",
                instance_key="k1",
                variant="a",
                purpose="marketing",
                channel="web",
                sent_at=at(DAY1, 12),
            )
        )
    for c, reason in ((c2, "holdout"), (c4, "holdout"), (c1, "quiet_hours")):
        s.add(
            PromptSkip(
                contact_id=c.id,
                prompt_id="cart",
                instance_key="k1" if reason == "holdout" else "k0",
                variant="holdout" if reason == "holdout" else None,
                reason=reason,
                at=at(DAY1, 12),
            )
        )
    for c, variant in ((c1, "a"), (c2, "holdout")):
        s.add(
            PromptConversion(
                prompt_id="cart",
                contact_id=c.id,
                instance_key="k1",
                variant=variant,
                goal="order",
                exposed_at=at(DAY1, 12),
                converted_at=at(DAY1, 12) + timedelta(hours=5),
            )
        )
    # an internal update: 3 planned, 2 sent, 1 held; one person engaged (a reaction removed
    # again is no engagement)
    emps = [Employee(name=f"E{i}", created_at=t0, updated_at=t0) for i in range(3)]
    upd = Update(key="spring", title="Spring menu", audience="all", created_at=at(DAY1, 8),
                 updated_at=t0, status="active")  # fmt: skip
    s.add_all([*emps, upd])
    await s.flush()
    for e, status in zip(emps, ("sent", "sent", "held"), strict=True):
        s.add(UpdateDelivery(update_id=upd.id, employee_id=e.id, status=status,
                             due_at=at(DAY1, 8), created_at=at(DAY1, 8)))  # fmt: skip
    for i, (e, kind) in enumerate(
        ((emps[0], "reaction"), (emps[0], "click"), (emps[1], "reaction_removed"))
    ):
        s.add(EngagementEvent(update_id=upd.id, employee_id=e.id, kind=kind, event_key=f"k{i}",
                              created_at=at(DAY1, 9)))  # fmt: skip
    return {"c1": c1.id, "c2": c2.id, "c3": c3.id, "c4": c4.id}
