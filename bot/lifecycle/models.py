"""Lifecycle tables: shop events, stage transitions (with their cause), flow state per contact."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId
from bot.storage.types import JSONType

# flow state statuses
ACTIVE = "active"  # waiting for the person's answer at ``step``
WAITING = "waiting"  # a wait step: resumes at ``due_at``
PAUSED = "paused"  # the person said pause (or started something else): "continue" resumes
PENDING = "pending"  # triggered while nobody could be written to: starts on their next message
DONE = "done"
CANCELLED = "cancelled"
OPEN_STATUSES = (ACTIVE, WAITING, PAUSED, PENDING)


class Event(Base):
    """One shop event, stored once (idempotent by the shop's ``event_id``)."""

    __tablename__ = "lifecycle_events"
    __table_args__ = (Index("ix_lifecycle_events_contact_time", "contact_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(255))  # None: recorded by a flow
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | import | bot
    late: Mapped[bool] = mapped_column(
        Boolean, default=False
    )  # older than the person's latest event


class StageTransition(Base):
    """A contact moved from one lifecycle stage to another, and why."""

    __tablename__ = "stage_transitions"
    __table_args__ = (
        Index("ix_stage_transitions_contact", "contact_id", "id"),
        Index("ix_stage_transitions_occurred_at", "occurred_at", "to_stage"),  # the dashboard
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str] = mapped_column(String(16))  # event | inactivity | replay | manual
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("lifecycle_events.id", ondelete="SET NULL")
    )
    rule: Mapped[str | None] = mapped_column(Text)  # the rule, as the shop wrote it
    occurred_at: Mapped[datetime]  # when it happened (the event's time, or the sweep's)
    created_at: Mapped[datetime]


class FlowState(Base):
    """One run of a flow for one contact: shared by every channel the person uses."""

    __tablename__ = "flow_states"
    __table_args__ = (
        Index("ix_flow_states_contact_status", "contact_id", "status"),
        Index("ix_flow_states_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    flow_id: Mapped[str] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))  # the current step
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    # frames of calling flows: [{"flow": id, "step": id, "history": [...]}]
    stack: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    history: Mapped[list[str]] = mapped_column(
        JSONType, default=list
    )  # interactive steps shown ("back")
    slots: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)  # trigger (event props, ...)
    trigger: Mapped[str | None] = mapped_column(String(128))  # e.g. event:delivered
    due_at: Mapped[datetime | None]
    seq: Mapped[int] = mapped_column(Integer, default=0)  # messages written (idempotency keys)
    tries: Mapped[int] = mapped_column(Integer, default=0)  # failed answers at this step
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
