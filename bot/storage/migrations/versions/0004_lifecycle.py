"""lifecycle tables (placeholder until that feature adds its tables).

Revision ID: 0004_lifecycle
Revises: 0003_handoff
"""

from collections.abc import Sequence

revision: str = "0004_lifecycle"
down_revision: str | None = "0003_handoff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
