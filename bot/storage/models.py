"""Core tables: people, their identities on channels, conversations, messages, the outbox.

Feature modules (handoff, lifecycle, prompts, internal) keep their tables in their own modules
on the same :data:`Base`; ``bot.storage.registry`` imports them all for Alembic.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.storage.types import JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


def _uuid() -> str:
    return uuid.uuid4().hex


class Contact(Base):
    """One person, across every channel they use."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_uuid)
    user_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # the shop's id
    display_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    lifecycle_stage: Mapped[str] = mapped_column(String(32), default="awareness", index=True)
    stage_entered_at: Mapped[datetime | None]
    marketing_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    marketing_opt_out_at: Mapped[datetime | None]
    preferred_channel: Mapped[str | None] = mapped_column(String(32))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # activity and RFM figures (kept up to date by the engine and the lifecycle engine)
    last_seen_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None] = mapped_column(index=True)
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    purchase_count: Mapped[int] = mapped_column(Integer, default=0)
    monetary_total: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    identities: Mapped[list[Identity]] = relationship(back_populates="contact")


class Identity(Base):
    """A contact on one channel: ``(channel, external_id)``, and where to write to them."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    address: Mapped[str | None] = mapped_column(String(255))  # chat id / DM channel id
    display_name: Mapped[str | None] = mapped_column(String(255))
    started: Mapped[bool] = mapped_column(Boolean, default=True)  # e.g. Telegram /start
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]

    contact: Mapped[Contact] = relationship(back_populates="identities")


class Consent(Base):
    """Consent of a contact for a purpose on a channel (``*`` = every channel)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("contact_id", "channel", "purpose"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32), default="*")
    purpose: Mapped[str] = mapped_column(String(32))  # service | marketing
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class Conversation(Base):
    """The running conversation of a contact: one open at a time, shared by all channels."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="bot")  # bot | handoff | closed
    last_channel: Mapped[str | None] = mapped_column(String(32))
    unsure_streak: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_message_at: Mapped[datetime | None]


class Message(Base):
    """Every message in and out, as the transcript shows it."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "platform_message_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        # the dashboard's date ranges (migration 0009_dashboard)
        Index(
            "ix_messages_dash_in",
            "created_at",
            "conversation_id",
            "language",
            "channel",
            postgresql_where=text("direction = 'in'"),
            sqlite_where=text("direction = 'in'"),
        ),
        Index(
            "ix_messages_dash_out",
            "created_at",
            postgresql_where=text("direction = 'out'"),
            sqlite_where=text("direction = 'out'"),
        ),
        Index(
            "ix_messages_dash_rated",
            "created_at",
            "feedback",
            "language",
            "channel",
            postgresql_where=text("feedback IS NOT NULL"),
            sqlite_where=text("feedback IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    sender: Mapped[str] = mapped_column(String(16))  # user | bot | staff | system
    channel: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType)
    payload: Mapped[str | None] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(255))
    client_id: Mapped[str | None] = mapped_column(String(64))
    intent: Mapped[str | None] = mapped_column(String(255), index=True)
    confidence: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    feedback: Mapped[str | None] = mapped_column(String(16))  # helpful | not_helpful
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """A message waiting to be sent, being sent, sent, or dead-lettered.

    Written in the same transaction as the turn that produced it; the unique
    ``idempotency_key`` makes "write it twice" impossible.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_address", "channel", "address", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(16), default="service")
    payload: Mapped[dict[str, Any]] = mapped_column()
    # pending | sending | sent | dead | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
