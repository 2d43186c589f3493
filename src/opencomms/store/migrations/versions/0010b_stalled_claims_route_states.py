"""claims without progress on messages (poison isolation), route states reported by workers

Revision ID: 0010b
Revises: 0010e
"""

import sqlalchemy as sa
from alembic import op

revision = "0010b"
down_revision = "0010e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "messages",
        sa.Column("stalled_claims", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "route_states",
        sa.Column("worker_id", sa.String(length=128), primary_key=True),
        sa.Column("route", sa.String(length=64), primary_key=True),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("route_states")
    op.drop_column("messages", "stalled_claims")
