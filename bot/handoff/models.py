"""A handoff is a ticket: who, why, where, and how it went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId

OPEN, ASSIGNED, WAITING, RESOLVED = "open", "assigned", "waiting", "resolved"
ACTIVE = (OPEN, ASSIGNED, WAITING)


class Handoff(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        Index("ix_handoffs_status", "status"),
        Index("ix_handoffs_thread", "staff_channel", "thread_ts"),
        Index("ix_handoffs_created_at", "created_at"),  # the dashboard (0009_dashboard)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))  # asked | unsure | frustrated | flow | vip
    language: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))  # the customer's channel
    address: Mapped[str] = mapped_column(String(255))  # where the customer is written to
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    assignee: Mapped[str | None] = mapped_column(String(255))
    staff_channel: Mapped[str | None] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))  # left outside working hours
    csat: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    last_reminder_at: Mapped[datetime | None]
