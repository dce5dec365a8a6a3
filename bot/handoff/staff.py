"""What staff do to a handoff, from any console: answer the customer (or write an internal
note), take it, resolve it or hand it back; and what their words on the staff channel mean
(a message in a handoff's thread, the ``resolve|take|handback <number>`` command, a summary
button). A channel adapter only translates its platform's events into these calls."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine import Reply, replies
from bot.handoff.console import STAFF_PLATFORM
from bot.handoff.models import ASSIGNED, RESOLVED, WAITING, Handoff
from bot.storage import seen
from bot.storage.models import Contact, Conversation, Message
from bot.types import Button, Outbound

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService

ACTIONS = ("resolve", "take", "handback")
USAGE = "Usage: /concierge resolve|take|handback <handoff number>"


class StaffDesk:
    def __init__(self, service: HandoffService) -> None:
        self.service = service

    async def command(self, text: str, who: Callable[[], Awaitable[str]]) -> str:
        """``resolve 12`` / ``take #12`` / ``handback 12``: the answer for the person who typed it."""
        words = text.split()
        if len(words) != 2 or words[0] not in ACTIONS:
            return USAGE
        try:
            hid = int(words[1].lstrip("#"))
        except ValueError:
            hid = 0
        if not 0 < hid < 2**63:  # beyond BIGINT no handoff has it (the database would refuse)
            return f"{words[1]!r} is not a handoff number"
        return f"Handoff #{hid}: {await self.action(hid, words[0], await who())}"

    async def button(self, payload: str, who: Callable[[], Awaitable[str]]) -> bool:
        """A summary's button (``/handoff{...}``) pressed: True when ``payload`` is one."""
        if not payload.startswith("/handoff{"):
            return False
        data = handoff_payload(payload)
        if data:
            await self.action(int(data["id"]), str(data["action"]), await who())
        return True

    async def by_thread(self, s: AsyncSession, channel: str, thread_ts: str) -> Handoff | None:
        return (
            await s.execute(
                select(Handoff).where(
                    Handoff.staff_channel == channel, Handoff.thread_ts == thread_ts
                )
            )
        ).scalar_one_or_none()

    async def reply(
        self,
        *,
        handoff_id: int | None = None,
        thread: tuple[str, str] | None = None,
        staff: str,
        text: str,
        source: str = STAFF_PLATFORM,
        delivery: tuple[str, str] | None = None,
    ) -> str:
        """A staff message for the customer (or an internal note). Returns what happened:
        ``sent``, ``internal``, ``unknown``, ``resolved`` or ``duplicate``. ``delivery``: the
        platform's ``(channel, delivery id)``, recorded as seen with the reply (a redelivery
        of it is then a duplicate)."""
        now = self.service.runtime.clock.now()
        async with self.service.runtime.db.session() as s:
            if delivery is not None and not await seen.record(s, *delivery, now):
                return "duplicate"
            h = None
            if handoff_id is not None:
                h = await s.get(Handoff, handoff_id)
            elif thread is not None:
                h = await self.by_thread(s, *thread)
            if h is None:
                if thread is not None:
                    await self.service.console.post(
                        s,
                        thread[0],
                        "I don't know this thread: no handoff belongs to it.",
                        key=f"unknown:{thread[1]}:{now.timestamp()}",
                        thread_ts=thread[1],
                    )
                return "unknown"
            if h.status == RESOLVED:
                await self.service.console.to_thread(
                    s,
                    h,
                    "This handoff is resolved; the customer did not get that message. "
                    "Ask them to write again to reopen it.",
                    key=f"closed:{h.id}:{now.timestamp()}",
                )
                return "resolved"
            internal = text.startswith(self.service.settings.marker)
            conv = await s.get(Conversation, h.conversation_id)
            contact = await s.get(Contact, h.contact_id)
            assert conv is not None and contact is not None
            if internal:
                s.add(
                    Message(
                        conversation_id=conv.id,
                        contact_id=contact.id,
                        direction="out",
                        sender="staff",
                        channel=source,
                        text=text,
                        created_at=now,
                        meta={"internal": True, "staff_name": staff, "handoff": h.id},
                    )
                )
                self.service.notify(h.id)
                return "internal"
            reply = Reply(
                contact_id=contact.id,
                conversation_id=conv.id,
                channel=h.channel,
                address=h.address,
                message=Outbound(
                    text=text, sender="staff", metadata={"staff_name": staff, "handoff": h.id}
                ),
                idempotency_key=f"staff:{h.id}:{source}:{now.timestamp()}:{hash(text)}",
                language=h.language,
            )
            await self.service.engine.write(s, [reply], now=now)
            if h.first_response_at is None:
                h.first_response_at = now
            if h.assignee is None:
                h.assignee = staff
            h.status = WAITING
            if source != STAFF_PLATFORM and h.staff_channel:  # inbox answers show in the thread too
                await self.service.console.to_thread(
                    s, h, f"*{staff}* (inbox): {text}", key=f"inbox:{h.id}:{now.timestamp()}"
                )
        self.service.runtime.worker.wake()
        self.service.notify(h.id)
        return "sent"

    async def action(self, handoff_id: int, action: str, staff: str) -> str:
        """``take``, ``resolve`` or ``handback`` from a button, the slash command or the inbox."""
        now = self.service.runtime.clock.now()
        async with self.service.runtime.db.session() as s:
            h = await s.get(Handoff, handoff_id)
            if h is None:
                return "unknown"
            if h.status == RESOLVED:
                return "resolved"
            if action == "take":
                h.assignee = staff
                h.status = ASSIGNED
                await self.service.console.to_thread(
                    s, h, f"{staff} took this.", key=f"take:{h.id}:{staff}"
                )
                result = "taken"
            elif action in ("resolve", "handback"):
                h.status = RESOLVED
                h.resolved_at = now
                h.assignee = h.assignee or staff
                conv = await s.get(Conversation, h.conversation_id)
                contact = await s.get(Contact, h.contact_id)
                assert conv is not None and contact is not None
                conv.status = "bot"
                state = dict(conv.state)
                state.pop("handoff_id", None)
                state.pop("await_email", None)
                conv.state = state
                lang = h.language or self.service.runtime.settings.default_language
                r = self.service.runtime.responses
                messages = [Outbound(text=r.text("utter_handoff_back", lang))]
                if action == "resolve":
                    messages.append(
                        Outbound(
                            text=r.text("utter_csat_question", lang),
                            buttons=tuple(
                                Button(str(n), f'/csat{{"score": {n}, "handoff": {h.id}}}')
                                for n in range(1, 6)
                            ),
                        )
                    )
                queued = replies(
                    messages,
                    f"{action}:{h.id}",
                    contact_id=contact.id,
                    conversation_id=conv.id,
                    channel=h.channel,
                    address=h.address,
                    language=lang,
                )
                await self.service.engine.write(s, queued, now=now)
                verb = "resolved" if action == "resolve" else "handed back to the bot"
                await self.service.console.to_thread(
                    s, h, f"{staff} {verb} this.", key=f"{action}:{h.id}"
                )
                result = action
            else:
                return "unknown"
        self.service.runtime.worker.wake()
        self.service.notify(handoff_id)
        return result


def handoff_payload(payload: str) -> dict[str, Any] | None:
    """``/handoff{"action": "take", "id": 3}`` -> ``{"action": "take", "id": 3}``."""
    if not payload.startswith("/handoff{"):
        return None
    try:
        data = json.loads(payload[len("/handoff") :])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
