"""readiness probe: the one row /readyz writes to learn whether PostgreSQL takes writes

Revision ID: 0010f
Revises: 0010d
"""

import sqlalchemy as sa
from alembic import op

revision = "0010f"
down_revision = "0010d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "readiness_probe",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("readiness_probe")
