"""Tables of the prompts feature (migration ``0005_prompts``).

- ``prompt_actions``: the scheduled actions. One row per (contact, prompt, trigger instance);
  the unique key is what makes "never twice" hold from the trigger down to the outbox.
- ``prompt_sends`` / ``prompt_skips``: what happened at send time, a skip with its reason
  (``holdout`` counts the control group of an experiment).
- ``prompt_assignments``: a contact's experiment group per prompt (stable hash; stored when
  the contact is first exposed, for reports).
- ``prompt_conversions``: a goal event within the prompt's window after an exposure.
- ``prompt_suppressions``: open complaints (from shop events) that hold prompts back.
- ``prompt_nps``: NPS answers (0-10).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId

# statuses of a scheduled action
PENDING, SENT, SKIPPED, CANCELLED = "pending", "sent", "skipped", "cancelled"


class _Instance:
    """One (contact, prompt, trigger instance), an action's unique key, and its variant: the
    columns an action and its send or skip share."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(String(64))
    instance_key: Mapped[str] = mapped_column(String(160))
    variant: Mapped[str | None] = mapped_column(String(32))


class PromptAction(_Instance, Base):
    __tablename__ = "prompt_actions"
    __table_args__ = (
        UniqueConstraint("contact_id", "prompt_id", "instance_key"),
        Index("ix_prompt_actions_due", "status", "due_at", "id"),
        Index("ix_prompt_actions_contact_prompt", "contact_id", "prompt_id", "status"),
    )

    due_at: Mapped[datetime]
    # pending | sent | skipped | cancelled
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    claimed_until: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(64))  # why skipped / cancelled / deferred
    deferrals: Mapped[int] = mapped_column(Integer, default=0)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. the event's properties
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PromptSend(_Instance, Base):
    __tablename__ = "prompt_sends"
    # few indexes: one row per prompt sent, written in bulk (reports scan the table)
    __table_args__ = (
        Index("ix_prompt_sends_contact_sent", "contact_id", "sent_at"),
        Index("ix_prompt_sends_sent_at", "sent_at"),  # the dashboard
    )

    action_id: Mapped[int] = mapped_column(
        ForeignKey("prompt_actions.id", ondelete="CASCADE"), unique=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    outbox_id: Mapped[int | None] = mapped_column(BigId)  # the outbox row (not a foreign key)
    sent_at: Mapped[datetime]


class PromptSkip(_Instance, Base):
    __tablename__ = "prompt_skips"
    __table_args__ = (
        Index("ix_prompt_skips_contact", "contact_id", "at"),
        Index("ix_prompt_skips_at", "at"),  # the dashboard
    )

    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("prompt_actions.id", ondelete="SET NULL")
    )
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class PromptAssignment(Base):
    __tablename__ = "prompt_assignments"
    __table_args__ = (UniqueConstraint("prompt_id", "contact_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prompt_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    variant: Mapped[str] = mapped_column(String(32))  # a variant id, or "holdout"
    assigned_at: Mapped[datetime]


class PromptConversion(Base):
    __tablename__ = "prompt_conversions"
    __table_args__ = (
        UniqueConstraint("prompt_id", "contact_id", "instance_key"),
        Index("ix_prompt_conversions_exposed_at", "exposed_at"),  # the dashboard
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prompt_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    instance_key: Mapped[str] = mapped_column(String(160))
    variant: Mapped[str] = mapped_column(String(32))
    goal: Mapped[str] = mapped_column(String(64))
    exposed_at: Mapped[datetime]
    converted_at: Mapped[datetime]


class PromptSuppression(Base):
    """An open complaint (or another shop-declared reason) that holds prompts back."""

    __tablename__ = "prompt_suppressions"
    __table_args__ = (Index("ix_prompt_suppressions_contact", "contact_id", "closed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # complaint
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    cause: Mapped[str | None] = mapped_column(String(64))  # the event type that opened it


class PromptNps(Base):
    __tablename__ = "prompt_nps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    prompt_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(16))  # promoter | passive | detractor
    channel: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]
