"""prompts tables: scheduled actions, sends, skips, experiment assignments, conversions,
complaint suppressions, NPS answers

Revision ID: 0005_prompts
Revises: 0004_lifecycle
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import bot.storage.types

revision: str = "0005_prompts"
down_revision: str | None = "0004_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("prompt_id", sa.String(length=64), nullable=False),
        sa.Column("instance_key", sa.String(length=160), nullable=False),
        sa.Column("due_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_until", bot.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("deferrals", sa.Integer(), nullable=False),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_prompt_actions_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_actions")),
        sa.UniqueConstraint(
            "contact_id", "prompt_id", "instance_key", name=op.f("uq_prompt_actions_contact_id")
        ),
    )
    op.create_index(
        "ix_prompt_actions_contact_prompt",
        "prompt_actions",
        ["contact_id", "prompt_id", "status"],
        unique=False,
    )
    op.create_index("ix_prompt_actions_due", "prompt_actions", ["status", "due_at"], unique=False)
    op.create_table(
        "prompt_assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("prompt_id", sa.String(length=64), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("assigned_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_prompt_assignments_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_assignments")),
        sa.UniqueConstraint(
            "prompt_id", "contact_id", name=op.f("uq_prompt_assignments_prompt_id")
        ),
    )
    op.create_index(
        op.f("ix_prompt_assignments_contact_id"), "prompt_assignments", ["contact_id"], unique=False
    )
    op.create_table(
        "prompt_conversions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("prompt_id", sa.String(length=64), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("instance_key", sa.String(length=160), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("goal", sa.String(length=64), nullable=False),
        sa.Column("exposed_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("converted_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_prompt_conversions_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_conversions")),
        sa.UniqueConstraint(
            "prompt_id", "contact_id", "instance_key", name=op.f("uq_prompt_conversions_prompt_id")
        ),
    )
    op.create_index(
        op.f("ix_prompt_conversions_contact_id"), "prompt_conversions", ["contact_id"], unique=False
    )
    op.create_table(
        "prompt_nps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("prompt_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_prompt_nps_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_nps")),
    )
    op.create_index(op.f("ix_prompt_nps_contact_id"), "prompt_nps", ["contact_id"], unique=False)
    op.create_table(
        "prompt_suppressions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("opened_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", bot.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cause", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_prompt_suppressions_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_suppressions")),
    )
    op.create_index(
        "ix_prompt_suppressions_contact",
        "prompt_suppressions",
        ["contact_id", "closed_at"],
        unique=False,
    )
    op.create_table(
        "prompt_sends",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "action_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("prompt_id", sa.String(length=64), nullable=False),
        sa.Column("instance_key", sa.String(length=160), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("outbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("sent_at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["prompt_actions.id"],
            name=op.f("fk_prompt_sends_action_id_prompt_actions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_prompt_sends_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_sends")),
        sa.UniqueConstraint("action_id", name=op.f("uq_prompt_sends_action_id")),
    )
    op.create_index(
        "ix_prompt_sends_contact_sent", "prompt_sends", ["contact_id", "sent_at"], unique=False
    )
    op.create_table(
        "prompt_skips",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("action_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("prompt_id", sa.String(length=64), nullable=False),
        sa.Column("instance_key", sa.String(length=160), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["prompt_actions.id"],
            name=op.f("fk_prompt_skips_action_id_prompt_actions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_prompt_skips_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_skips")),
    )
    op.create_index("ix_prompt_skips_contact", "prompt_skips", ["contact_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_prompt_skips_contact", table_name="prompt_skips")
    op.drop_table("prompt_skips")
    op.drop_index("ix_prompt_sends_contact_sent", table_name="prompt_sends")
    op.drop_table("prompt_sends")
    op.drop_index("ix_prompt_suppressions_contact", table_name="prompt_suppressions")
    op.drop_table("prompt_suppressions")
    op.drop_index(op.f("ix_prompt_nps_contact_id"), table_name="prompt_nps")
    op.drop_table("prompt_nps")
    op.drop_index(op.f("ix_prompt_conversions_contact_id"), table_name="prompt_conversions")
    op.drop_table("prompt_conversions")
    op.drop_index(op.f("ix_prompt_assignments_contact_id"), table_name="prompt_assignments")
    op.drop_table("prompt_assignments")
    op.drop_index("ix_prompt_actions_due", table_name="prompt_actions")
    op.drop_index("ix_prompt_actions_contact_prompt", table_name="prompt_actions")
    op.drop_table("prompt_actions")
