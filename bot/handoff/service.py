"""Handoff to staff and back (issue 5).

- Triggers: the person asks (intent ``request_human``, the ``/request_human`` button, words such
  as "human", "Mensch", "ember", "människa", "człowiek"), the NLU is unsure twice (the FAQ
  policy's offer), frustration (strong words, the same question three times), a VIP contact on
  an unsure answer, a flow step (``HandoffService.start``).
- While a handoff is open every message of the customer goes to the staff thread and to the
  web inbox, and still gets a reply. Until a person has taken it, the customer is told once
  when a person will answer (roughly: within the SLA in working hours, else "tomorrow at
  09:00" in their time zone), FAQ questions are answered ("While you wait: ..."), commands
  ("stop", feedback, CSAT) are confirmed, and anything else is acknowledged as passed on. Once
  a person has taken it (Take, or a first staff answer) the bot stays quiet except to confirm
  commands. The bot's replies during a handoff are copied to the thread as well.
  Staff answer in the Slack thread (or the inbox); a reply starting with
  the internal marker (``//``) stays internal. Resolving hands back to the bot and asks for a
  1-5 CSAT score.
- Outside working hours the customer learns when a person will answer and may leave an email.
- An SLA timer re-posts handoffs nobody answered.

The staff channel's side (summary, thread posts, SLA reminders) is :mod:`bot.handoff.console`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.engine import FALLBACK, StateKey, Turn, is_command, offer_person
from bot.handoff.console import StaffConsole
from bot.handoff.metrics import handoff_metrics
from bot.handoff.models import ACTIVE, ASSIGNED, OPEN, WAITING, Handoff
from bot.handoff.settings import HandoffSettings
from bot.handoff.staff import StaffDesk
from bot.i18n import relative_when
from bot.shop import support_hours
from bot.storage.models import Conversation, Message
from bot.types import Button, Outbound

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

ASK_WORDS = re.compile(
    r"\b(human|person|agent|operator|someone real|real person|mensch|mitarbeiter\w*|"
    r"ember\w*|ügyintéző\w*|munkatárs\w*|människa|människan|personal|handläggare|"
    r"człowiek\w*|konsultant\w*|pracownik\w*)\b",
    re.IGNORECASE,
)
FRUSTRATED = re.compile(
    r"\b(useless|stupid bot|terrible|worst|scheiß\w*|nutzlos|blöd\w*|hülye|használhatatlan|"
    r"värdelös|dålig bot|beznadziej\w*|bezużyteczn\w*|głupi)\b",
    re.IGNORECASE,
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


class HandoffService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        s = runtime.settings
        self.settings = HandoffSettings(
            staff_channel=s.slack_staff_channel,
            marker=s.handoff_internal_marker,
            hours=support_hours(runtime.shop, s),
            sla=timedelta(minutes=s.handoff_sla_minutes),
        )
        self.console = StaffConsole(runtime, self.settings)
        self.staff = StaffDesk(self)
        # web inbox listeners: called with the handoff id after every change
        self.listeners: list[Callable[[int], None]] = []

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    def notify(self, handoff_id: int) -> None:
        for fn in list(self.listeners):
            try:
                fn(handoff_id)
            except Exception:
                log.exception("inbox listener failed")

    # --- the policy ----------------------------------------------------------------------
    async def prefetch(self, s: AsyncSession, turns: list[Turn]) -> None:
        """The last inbound texts of a batch's conversations, in one statement (engine
        prefetcher); a turn alone reads its own when the policy needs them."""
        convs = sorted({t.conversation.id for t in turns if t.inbound.payload is None})
        if len(turns) < 2 or not convs:
            return
        texts: dict[int, list[str]] = {c: [] for c in convs}
        rows = await s.execute(_RECENT_TEXTS_MANY, {"conversation_ids": convs})
        for conv_id, text in rows:
            texts[conv_id].append(text)
        for t in turns:
            if t.conversation.id in texts:
                t.state.set(_RECENT, (t.conversation.id, texts[t.conversation.id]))

    async def policy(self, turn: Turn) -> bool:
        conv = turn.conversation
        if conv.status == "handoff":
            return await self._during(turn)
        if turn.intent == "csat":
            return await self._csat(turn)
        reason = await self._trigger(turn)
        if reason is None:
            return False
        await self.start(turn.session, turn, reason)
        return True

    async def _trigger(self, turn: Turn) -> str | None:
        if turn.intent == "request_human":
            return str(turn.entities.get("reason") or "asked")
        text = turn.inbound.text
        if turn.inbound.payload is None and ASK_WORDS.search(text) and len(text) < 120:
            return "asked"
        if FRUSTRATED.search(text):
            return "frustrated"
        key = text.strip().casefold()
        if turn.inbound.payload is None and key:
            # the same question a third time in the person's last six: read from the
            # transcript (this message included), not written to the conversation every turn
            pre = turn.state.get(_RECENT)
            if pre is not None and pre[0] == turn.conversation.id:
                recent: Iterable[str] = pre[1]
            else:
                recent = (
                    await turn.session.execute(
                        _RECENT_TEXTS, {"conversation_id": turn.conversation.id}
                    )
                ).scalars()
            if sum(t.strip().casefold() == key for t in recent) >= 3:
                return "frustrated"
        if turn.intent == FALLBACK and (turn.contact.attributes or {}).get(
            self.settings.vip_attribute
        ):
            return "vip"
        return None

    async def start(self, s: AsyncSession, turn: Turn, reason: str) -> Handoff:
        """Open a handoff for the turn's conversation and tell staff and customer."""
        now = turn.now
        conv = turn.conversation
        h = Handoff(
            contact_id=turn.contact.id,
            conversation_id=conv.id,
            reason=reason,
            language=turn.language,
            channel=turn.inbound.channel,
            address=turn.inbound.reply_address,
            status=OPEN,
            staff_channel=self.settings.staff_channel,
            created_at=now,
        )
        s.add(h)
        await s.flush()
        conv.status = "handoff"
        conv.unsure_streak = 0
        conv.state = {**conv.state, "handoff_id": h.id}
        turn.answer_meta.update(intent="request_human", handoff=h.id, reason=reason)
        hours = self.settings.hours
        if hours.is_open(now):
            turn.say("utter_handoff_started", when=self.when_text(turn))
        else:
            turn.say("utter_handoff_offhours", when=self.when_text(turn))
            conv.state = {**conv.state, "await_email": h.id}
        await self.console.post_summary(s, h, turn.contact)
        self.notify(h.id)
        return h

    async def _during(self, turn: Turn) -> bool:
        """A message while staff have the conversation: to the thread, not to the bot."""
        s = turn.session
        h = await self.active_for(s, turn.conversation.id)
        if h is None:  # the ticket is gone: the bot takes over again
            turn.conversation.status = "bot"
            return False
        if turn.inbound.payload == "/csat" or turn.intent == "csat":
            return await self._csat(turn)
        awaiting = turn.conversation.state.get("await_email")
        m = EMAIL.search(turn.inbound.text)
        if awaiting == h.id and m:
            h.email = m.group(0)
            state = dict(turn.conversation.state)
            state.pop("await_email", None)
            turn.conversation.state = state
            turn.say("utter_handoff_email_thanks", email=h.email)
        if h.status == WAITING:
            h.status = ASSIGNED if h.assignee else OPEN
        await self.console.to_thread(
            s, h, f"*Customer:* {turn.inbound.text}", key=f"in:{turn.message.id}"
        )
        turn.answer_meta.update(intent="handoff", handoff=h.id)
        turn.state.set(_DURING, (h, len(turn.replies)))
        self.notify(h.id)
        if is_command(turn):
            return False  # "stop" and the answer buttons: their own policies confirm them
        if h.assignee is not None:
            return True  # a person has it: they answer, the bot stays quiet
        name = f"utter_{turn.intent}"
        if (
            turn.intent not in (FALLBACK, "request_human")
            and turn.engine.responses.has(name, turn.language)
            and turn.confidence > 0
        ):
            return False  # answered while they wait (FAQ), see after_turn
        if not turn.replies:
            turn.say("utter_handoff_forwarded")
        return True

    async def after_turn(self, turn: Turn) -> None:
        """During a handoff: "While you wait:" before an answer, and the bot's replies in the
        staff thread (the inbox reads them from the transcript)."""
        during = turn.state.get(_DURING)
        if during is None:
            return
        h, first = during
        if len(turn.replies) > first and turn.answer_meta.get("policy") == "faq":
            r = turn.replies[first]
            turn.replies[first] = Outbound(
                text=f"{turn.text('utter_handoff_while_you_wait')} {r.text}",
                buttons=r.buttons,
                purpose=r.purpose,
                sender=r.sender,
                thread_id=r.thread_id,
                metadata=r.metadata,
            )
        for i, r in enumerate(turn.replies):
            await self.console.to_thread(
                turn.session, h, f"*Bot:* {r.text}", key=f"bot:{turn.message.id}:{i}"
            )

    def staff_reachable(self, now: datetime) -> bool:
        """A person can answer now: in working hours, with a staff channel or the inbox (a
        staff account, or the shared admin password)."""
        s = self.runtime.settings
        from bot.staff import StaffDirectory

        directory = self.runtime.maybe_service(StaffDirectory)
        console = bool(s.admin_password) or bool(directory and directory.accounts)
        return bool(self.settings.staff_channel or console) and self.settings.hours.is_open(now)

    def offer_person(self, turn: Turn) -> Outbound:
        """After "None of these" or a second unsure turn: a person when one can answer now,
        else the time a person is back and a way to leave an e-mail address."""
        if self.staff_reachable(turn.now):
            return offer_person(turn)
        return Outbound(
            text=turn.text("utter_offer_email", when=self.when_text(turn)),
            buttons=(
                Button(turn.text("utter_button_email"), '/request_human{"reason": "unsure"}'),
                Button(turn.text("utter_button_rephrase"), "/rephrase"),
            ),
        )

    def when_text(self, turn: Turn) -> str:
        """Roughly when a person answers, in the customer's words and time zone: "within about
        15 minutes" in working hours, else "today at 08:00", "on Monday at 08:00"."""
        hours, now = self.settings.hours, turn.now
        if hours.is_open(now):
            return turn.text(
                "utter_when_soon", minutes=int(self.settings.sla.total_seconds() // 60)
            )
        return relative_when(
            hours.next_open(now).astimezone(_zone(turn.contact.timezone) or hours.timezone),
            now,
            turn.language,
            turn.text,
        )

    async def _csat(self, turn: Turn) -> bool:
        try:
            score = int(turn.entities.get("score"))  # type: ignore[arg-type]
            hid = int(turn.entities.get("handoff"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        h = await turn.session.get(Handoff, hid)
        if h is None or h.contact_id != turn.contact.id or not 1 <= score <= 5:
            return False
        h.csat = score
        turn.say("utter_csat_thanks")
        turn.answer_meta.update(intent="csat", handoff=hid, score=score)
        if h.staff_channel:
            await self.console.to_thread(turn.session, h, f"CSAT: {score}/5", key=f"csat:{hid}")
        return True

    # --- staff side ------------------------------------------------------------------------
    async def active_for(self, s: AsyncSession, conversation_id: int) -> Handoff | None:
        return (
            await s.execute(
                select(Handoff)
                .where(Handoff.conversation_id == conversation_id, Handoff.status.in_(ACTIVE))
                .order_by(Handoff.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()

    async def metrics(self) -> dict[str, Any]:
        async with self.runtime.db.session() as s:
            return await handoff_metrics(s)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


_RECENT_TEXTS = (
    select(Message.text)
    .where(
        Message.conversation_id == bindparam("conversation_id"),
        Message.direction == "in",
        Message.payload.is_(None),
    )
    .order_by(Message.id.desc())
    .limit(6)
)
# (conversation id, its last inbound texts)
_RECENT = StateKey[tuple[int, list[str]]]("handoff.recent_texts")
# (the open handoff, the number of replies before the bot's)
_DURING = StateKey[tuple[Handoff, int]]("handoff.during")


# the same for many conversations, in one statement whatever their number: per conversation
# the id of its sixth-newest inbound text (index lookup), then its rows from there on
_M = aliased(Message)
_FLOOR = (
    select(_M.id)
    .where(_M.conversation_id == Conversation.id, _M.direction == "in", _M.payload.is_(None))
    .order_by(_M.id.desc())
    .limit(1)
    .offset(5)
    .correlate(Conversation)
    .scalar_subquery()
)
_CUT = (
    select(Conversation.id.label("cid"), func.coalesce(_FLOOR, 0).label("floor"))
    .where(Conversation.id.in_(bindparam("conversation_ids", expanding=True)))
    .subquery()
)
_RECENT_TEXTS_MANY = (
    select(Message.conversation_id, Message.text)
    .join(_CUT, and_(Message.conversation_id == _CUT.c.cid, Message.id >= _CUT.c.floor))
    .where(Message.direction == "in", Message.payload.is_(None))
)


def service_of(runtime: Runtime) -> HandoffService:
    # on the runtime, not in a module-level registry: that kept every runtime a process ever
    # made alive, with its NLU model (57 MB each, 9 GB over the test suite)
    return runtime.service(HandoffService)


def setup(runtime: Runtime) -> None:
    svc = HandoffService(runtime)
    runtime.register(svc)
    runtime.engine.add_policy("handoff", svc.policy, priority=20)
    runtime.engine.add_prefetch(svc.prefetch)
    runtime.engine.add_after_turn(svc.after_turn)
    runtime.engine.offer_person = svc.offer_person
    runtime.worker.before_send.append(svc.console.before_send)
    runtime.worker.after_sent.append(svc.console.after_sent)
    runtime.worker.after_dead.append(svc.console.after_dead)
    runtime.jobs.add("handoff SLA", svc.console.sla_sweep, every=60.0)
