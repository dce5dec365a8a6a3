"""lifecycle tables: shop events, stage transitions, flow state per contact

Revision ID: 0004_lifecycle
Revises: 0003_handoff
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import bot.storage.types

revision: str = "0004_lifecycle"
down_revision: str | None = "0003_handoff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = bot.storage.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "lifecycle_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_lifecycle_events_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_lifecycle_events_event_id")),
    )
    op.create_index(
        "ix_lifecycle_events_contact_time", "lifecycle_events", ["contact_id", "occurred_at"]
    )
    op.create_table(
        "stage_transitions",
        sa.Column("id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("from_stage", sa.String(length=32), nullable=True),
        sa.Column("to_stage", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("event_id", ID, nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_stage_transitions_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["lifecycle_events.id"],
            name=op.f("fk_stage_transitions_event_id_lifecycle_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_transitions")),
    )
    op.create_index("ix_stage_transitions_contact", "stage_transitions", ["contact_id", "id"])
    op.create_table(
        "flow_states",
        sa.Column("id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stack", JSON, nullable=False),
        sa.Column("history", JSON, nullable=False),
        sa.Column("slots", JSON, nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("trigger", sa.String(length=128), nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_flow_states_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_states")),
    )
    op.create_index("ix_flow_states_contact_status", "flow_states", ["contact_id", "status"])
    op.create_index("ix_flow_states_due", "flow_states", ["status", "due_at"])


def downgrade() -> None:
    op.drop_table("flow_states")
    op.drop_table("stage_transitions")
    op.drop_table("lifecycle_events")
