"""staff accounts (owner / agent, argon2 password hashes) and the record of staff actions

Revision ID: 0008_staff
Revises: 0007_prompt_claim_index
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.storage.types import JSONType, UTCDateTime

revision: str = "0008_staff"
down_revision: str | None = "0007_prompt_claim_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_accounts"),
        sa.UniqueConstraint("name", name="uq_staff_accounts_name"),
        sa.UniqueConstraint("email", name="uq_staff_accounts_email"),
    )
    op.create_table(
        "staff_actions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("staff_id", BigId, nullable=True),
        sa.Column("staff_name", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("handoff_id", BigId, nullable=True),
        sa.Column("contact_id", BigId, nullable=True),
        sa.Column("detail", JSONType, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_accounts.id"],
            name="fk_staff_actions_staff_id_staff_accounts",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff_actions"),
    )
    op.create_index("ix_staff_actions_staff", "staff_actions", ["staff_id", "at"])
    op.create_index("ix_staff_actions_handoff", "staff_actions", ["handoff_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_actions_handoff", table_name="staff_actions")
    op.drop_index("ix_staff_actions_staff", table_name="staff_actions")
    op.drop_table("staff_actions")
    op.drop_table("staff_accounts")
