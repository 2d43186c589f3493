"""sender inventory: senders, sender pools, their members and operations

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "senders",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("mps", sa.Float(), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_senders_account_address", "senders", ["account_sid", "channel", "address"], unique=True
    )
    op.create_table(
        "sender_pools",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_sender_pools_account_id", "sender_pools", ["account_sid", "id"])
    op.create_table(
        "sender_pool_senders",
        sa.Column("pool_id", sa.String(length=64), primary_key=True),
        sa.Column("sender_id", sa.String(length=64), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_sender_pool_senders_sender", "sender_pool_senders", ["sender_id"])
    op.create_table(
        "sender_pool_operations",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("pool_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_sender_pool_operations_account_id", "sender_pool_operations", ["account_sid", "id"]
    )


def downgrade() -> None:
    for table in ("sender_pool_operations", "sender_pool_senders", "sender_pools", "senders"):
        op.drop_table(table)
