"""internal tables (placeholder until that feature adds its tables).

Revision ID: 0006_internal
Revises: 0005_prompts
"""

from collections.abc import Sequence

revision: str = "0006_internal"
down_revision: str | None = "0005_prompts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
