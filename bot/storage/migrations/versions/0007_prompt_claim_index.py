"""prompt actions: the claim index ends with id, so "due first, oldest id first" is read in
index order and a batch stops after its LIMIT (instead of sorting every due row)

Revision ID: 0007_prompt_claim_index
Revises: 0006_internal
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_prompt_claim_index"
down_revision: str | None = "0006_internal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_prompt_actions_due", table_name="prompt_actions")
    op.create_index(
        "ix_prompt_actions_due", "prompt_actions", ["status", "due_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_prompt_actions_due", table_name="prompt_actions")
    op.create_index("ix_prompt_actions_due", "prompt_actions", ["status", "due_at"], unique=False)
