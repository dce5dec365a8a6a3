"""handoff tables (placeholder until that feature adds its tables).

Revision ID: 0003_handoff
Revises: 0002_channels
"""

from collections.abc import Sequence

revision: str = "0003_handoff"
down_revision: str | None = "0002_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
