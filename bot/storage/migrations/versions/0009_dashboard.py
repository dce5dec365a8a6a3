"""dashboard: daily roll-ups of the message figures, and indexes for date ranges

- stats_daily: the figures of each closed day (conversations, customer messages, the
  assistant's turns by outcome) per language and channel, computed once (bot/stats.py);

- messages: the customer's messages by time, with what a day's count needs (partial: inbound
  only; PostgreSQL answers from the index alone once the table is vacuumed), the assistant's
  replies by time (partial: outbound), and the rated answers with what the CSAT chart reads
  (partial: feedback given; answered from the index alone);
- handoffs, stage transitions, prompt sends / skips / conversions: by their time.

Revision ID: 0009_dashboard
Revises: 0008_staff
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_dashboard"
down_revision: str | None = "0008_staff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INBOUND = sa.text("direction = 'in'")
OUTBOUND = sa.text("direction = 'out'")
RATED = sa.text("feedback IS NOT NULL")

INDEXES: list[tuple[str, str, list[str], sa.TextClause | None]] = [
    (
        "ix_messages_dash_in",
        "messages",
        ["created_at", "conversation_id", "language", "channel"],
        INBOUND,
    ),
    ("ix_messages_dash_out", "messages", ["created_at"], OUTBOUND),
    (
        "ix_messages_dash_rated",
        "messages",
        ["created_at", "feedback", "language", "channel"],
        RATED,
    ),
    ("ix_handoffs_created_at", "handoffs", ["created_at"], None),
    ("ix_stage_transitions_occurred_at", "stage_transitions", ["occurred_at", "to_stage"], None),
    ("ix_prompt_sends_sent_at", "prompt_sends", ["sent_at"], None),
    ("ix_prompt_skips_at", "prompt_skips", ["at"], None),
    ("ix_prompt_conversions_exposed_at", "prompt_conversions", ["exposed_at"], None),
]


def upgrade() -> None:
    op.create_table(
        "stats_daily",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "language", "channel", "metric", name=op.f("pk_stats_daily")
        ),
    )
    for name, table, columns, where in INDEXES:
        op.create_index(name, table, columns, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name, table, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("stats_daily")
