"""prompts tables (placeholder until that feature adds its tables).

Revision ID: 0005_prompts
Revises: 0004_lifecycle
"""

from collections.abc import Sequence

revision: str = "0005_prompts"
down_revision: str | None = "0004_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
