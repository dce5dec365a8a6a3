"""The staff channel's side of a handoff, through the outbox: the summary with its buttons,
posts in the handoff's thread, thread ids resolved once the summary has its ``ts``, staff
replies that could not be delivered reported in the thread, and SLA reminders.

Staff-side messages go through the outbox on the staff channel's platform (address: the staff
channel); the thread id is written as ``handoff:<id>`` and resolved just before sending, after the
summary message (sent first: the outbox keeps order per address) has given the thread its ``ts``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine.writer import Reply, write
from bot.handoff.models import OPEN, Handoff
from bot.handoff.settings import HandoffSettings
from bot.storage.models import Contact, Message
from bot.types import Button, Delivery, Outbound, SendResult, TransientError

if TYPE_CHECKING:
    from bot.runtime import Runtime

SUMMARY_LINES = 10
STAFF_PLATFORM = "slack"  # where the staff channel lives (CONCIERGE_SLACK_STAFF_CHANNEL)


class StaffConsole:
    def __init__(self, runtime: Runtime, settings: HandoffSettings) -> None:
        self.runtime = runtime
        self.settings = settings

    async def post(
        self,
        s: AsyncSession,
        channel: str,
        text: str,
        *,
        key: str,
        thread_ts: str | None = None,
        buttons: tuple[Button, ...] = (),
        metadata: dict[str, Any] | None = None,
    ) -> None:
        post = Reply(
            channel=STAFF_PLATFORM,
            address=channel,
            message=Outbound(
                text=text,
                buttons=buttons,
                sender="system",
                thread_id=thread_ts,
                metadata=metadata or {},
            ),
            idempotency_key=f"staff-console:{key}",
        )
        await write(s, [post], now=self.runtime.clock.now())

    async def to_thread(self, s: AsyncSession, h: Handoff, text: str, *, key: str) -> None:
        if not h.staff_channel:
            return
        await self.post(
            s, h.staff_channel, text, key=key, thread_ts=h.thread_ts or f"handoff:{h.id}"
        )

    async def post_summary(self, s: AsyncSession, h: Handoff, contact: Contact) -> None:
        if not h.staff_channel:
            return
        rows = list(
            await s.scalars(
                select(Message)
                .where(Message.conversation_id == h.conversation_id)
                .order_by(Message.id.desc())
                .limit(SUMMARY_LINES)
            )
        )[::-1]
        who = contact.display_name or contact.email or contact.user_id or f"contact {contact.id}"
        summary = (
            f"*Handoff #{h.id}*: {who} on {h.channel}, language {h.language or '?'}, "
            f"stage {contact.lifecycle_stage}, reason: {h.reason}."
        )
        last = next((m.text for m in reversed(rows) if m.direction == "in"), "")
        if last:
            summary += f"\n> {last[:300]}"
        await self.post(
            s,
            h.staff_channel,
            summary,
            key=f"summary:{h.id}",
            buttons=(
                Button("Take", f'/handoff{{"action": "take", "id": {h.id}}}'),
                Button("Resolve", f'/handoff{{"action": "resolve", "id": {h.id}}}'),
                Button("Hand back to bot", f'/handoff{{"action": "handback", "id": {h.id}}}'),
            ),
            metadata={"handoff_summary": h.id},
        )
        transcript = "\n".join(
            f"{'Customer' if m.direction == 'in' else m.sender.capitalize()}: {m.text}"
            for m in rows
        )
        if transcript:
            await self.to_thread(s, h, f"Transcript:\n{transcript}", key=f"transcript:{h.id}")

    async def before_send(self, delivery: Delivery) -> Delivery:
        """Resolve ``handoff:<id>`` thread ids once the summary has its ``ts``."""
        thread = delivery.message.thread_id
        if delivery.channel != STAFF_PLATFORM or not thread or not thread.startswith("handoff:"):
            return delivery
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, int(thread.split(":", 1)[1]))
        if h is None or not h.thread_ts:
            raise TransientError("the handoff's summary is not posted yet")
        return replace(delivery, message=replace(delivery.message, thread_id=h.thread_ts))

    async def after_sent(self, delivery: Delivery, result: SendResult) -> None:
        hid = delivery.message.metadata.get("handoff_summary")
        if hid and result.platform_message_id:
            async with self.runtime.db.session() as s:
                await s.execute(
                    update(Handoff)
                    .where(Handoff.id == int(hid))
                    .values(thread_ts=result.platform_message_id)
                )
            self.runtime.worker.wake()

    async def after_dead(self, delivery: Delivery, reason: str) -> None:
        """A staff reply that could not reach the customer is reported in the thread."""
        hid = delivery.message.metadata.get("handoff")
        if not hid or delivery.message.sender != "staff":
            return
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, int(hid))
            if h is not None:
                await self.to_thread(
                    s,
                    h,
                    f"Not delivered to the customer ({reason}).",
                    key=f"dead:{delivery.outbox_id}",
                )
        self.runtime.worker.wake()

    async def sla_sweep(self, now: datetime | None = None) -> int:
        """Re-post handoffs nobody answered within the SLA (once per SLA period)."""
        now = now or self.runtime.clock.now()
        due = now - self.settings.sla
        n = 0
        async with self.runtime.db.session() as s:
            rows = (
                await s.scalars(
                    select(Handoff).where(
                        Handoff.status == OPEN,
                        Handoff.first_response_at.is_(None),
                        Handoff.created_at <= due,
                        (Handoff.last_reminder_at.is_(None)) | (Handoff.last_reminder_at <= due),
                    )
                )
            ).all()
            for h in rows:
                if not h.staff_channel or not self.settings.hours.is_open(now):
                    continue
                waited = int((now - h.created_at).total_seconds() // 60)
                await self.post(
                    s,
                    h.staff_channel,
                    f"Handoff #{h.id} has waited {waited} min for a first answer.",
                    key=f"sla:{h.id}:{now.isoformat()}",
                )
                h.last_reminder_at = now
                n += 1
        if n:
            self.runtime.worker.wake()
        return n
