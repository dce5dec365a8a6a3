"""channels: platform deliveries already taken in (Slack event retries processed once)

Revision ID: 0002_channels
Revises: 0001_core
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = "0002_channels"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = bot.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "seen_deliveries",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(255), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("channel", "delivery_id", name=op.f("pk_seen_deliveries")),
    )
    op.create_index(
        op.f("ix_seen_deliveries_seen_at"), "seen_deliveries", ["seen_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_seen_deliveries_seen_at"), table_name="seen_deliveries")
    op.drop_table("seen_deliveries")
