"""Tables of internal updates: employees, audiences, updates, deliveries, engagement, pulses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId
from bot.storage.types import JSONType


class Employee(Base):
    """A person in the company, synced from Slack (``users.list``) and/or a CSV import."""

    __tablename__ = "internal_employees"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slack_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    department: Mapped[str | None] = mapped_column(String(255), index=True)
    title: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    joined_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Slack user group handles the person belongs to (kept by the sync)
    groups: Mapped[list[str]] = mapped_column(JSONType, default=list)
    subscriptions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    opted_down: Mapped[list[str]] = mapped_column(JSONType, default=list)
    weekly_cap: Mapped[int | None] = mapped_column(Integer)  # personal cap ("less please")
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(16), default="slack")  # slack | csv
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Audience(Base):
    """A saved audience: a selector expression, or a member list imported from CSV."""

    __tablename__ = "internal_audiences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    spec: Mapped[str | None] = mapped_column(Text)
    # imported members: Slack user ids or e-mail addresses
    members: Mapped[list[str]] = mapped_column(JSONType, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Update(Base):
    """One update (or pulse survey, or team digest) to an audience."""

    __tablename__ = "internal_updates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="update")  # update|pulse|team_digest
    title: Mapped[str] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(Text)  # file path, or "cli"
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)  # bodies, links, more, pulse
    content_hash: Mapped[str | None] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(Text)
    delivery: Mapped[str] = mapped_column(String(16), default="dm")  # dm | channel
    channel_id: Mapped[str | None] = mapped_column(String(64))
    goal: Mapped[str] = mapped_column(String(32), default="engagement")
    topic: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # high|normal|low
    important: Mapped[bool] = mapped_column(Boolean, default=False)
    # local wall-clock time "YYYY-MM-DDTHH:MM"; in schedule_tz, or each recipient's zone if None
    scheduled_for: Mapped[str | None] = mapped_column(String(32))
    schedule_tz: Mapped[str | None] = mapped_column(String(64))
    not_before: Mapped[datetime | None] = mapped_column(index=True)  # earliest expansion (UTC)
    # draft | scheduled | active | cancelled
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    materialized_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UpdateDelivery(Base):
    """An update to one employee (or one channel post): planned, sent, held, bundled, skipped."""

    __tablename__ = "internal_deliveries"
    __table_args__ = (
        UniqueConstraint("update_id", "employee_id"),
        Index("ix_internal_deliveries_due", "status", "due_at"),
        Index("ix_internal_deliveries_employee", "employee_id", "status", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("internal_updates.id", ondelete="CASCADE"))
    employee_id: Mapped[int | None] = mapped_column(
        ForeignKey("internal_employees.id", ondelete="CASCADE")
    )
    address: Mapped[str | None] = mapped_column(String(64))  # channel id of a channel post
    # planned | sent | held | bundled | skipped
    status: Mapped[str] = mapped_column(String(16), default="planned")
    reason: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime]
    deferred_count: Mapped[int] = mapped_column(Integer, default=0)
    important_pass: Mapped[bool] = mapped_column(Boolean, default=False)  # passed the cap
    language: Mapped[str | None] = mapped_column(String(16))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    digest_outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL")
    )
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class EngagementEvent(Base):
    """A reaction, a button click or a rating on an update; ``event_key`` drops platform retries."""

    __tablename__ = "internal_engagement"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    update_id: Mapped[int] = mapped_column(
        ForeignKey("internal_updates.id", ondelete="CASCADE"), index=True
    )
    employee_id: Mapped[int | None] = mapped_column(
        ForeignKey("internal_employees.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(24))  # reaction|reaction_removed|click|rating
    value: Mapped[str | None] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]


class PulseSurvey(Base):
    """The question of a pulse update and how its answers may be shown."""

    __tablename__ = "internal_pulse_surveys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    update_id: Mapped[int] = mapped_column(
        ForeignKey("internal_updates.id", ondelete="CASCADE"), unique=True
    )
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSONType, default=list)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    min_group_size: Mapped[int] = mapped_column(Integer, default=5)
    group_by: Mapped[str] = mapped_column(String(32), default="department")
    created_at: Mapped[datetime]


class PulseAnswer(Base):
    """One person's answer. Anonymous surveys keep a keyed hash, never the person."""

    __tablename__ = "internal_pulse_answers"
    __table_args__ = (UniqueConstraint("survey_id", "respondent"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survey_id: Mapped[int] = mapped_column(
        ForeignKey("internal_pulse_surveys.id", ondelete="CASCADE"), index=True
    )
    respondent: Mapped[str] = mapped_column(String(64))
    employee_id: Mapped[int | None] = mapped_column(
        ForeignKey("internal_employees.id", ondelete="SET NULL")
    )
    group: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]  # day precision for anonymous answers
