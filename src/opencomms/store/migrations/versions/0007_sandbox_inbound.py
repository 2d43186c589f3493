"""sandbox inbox clears, inbound sessions on messages, opt-outs

Revision ID: 0007
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("session_id", sa.String(length=64), nullable=True))
    op.create_index("ix_messages_session", "messages", ["account_sid", "session_id"])
    op.create_table(
        "sandbox_clears",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=True),
        sa.Column("operation_id", sa.String(length=64), nullable=True),
        sa.Column("up_to_attempt", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_sandbox_clears_account", "sandbox_clears", ["account_sid"])
    op.create_table(
        "opt_outs",
        sa.Column("account_sid", sa.String(length=34), primary_key=True),
        sa.Column("sender_address", sa.String(length=320), primary_key=True),
        sa.Column("address", sa.String(length=320), primary_key=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("opt_outs")
    op.drop_index("ix_sandbox_clears_account", table_name="sandbox_clears")
    op.drop_table("sandbox_clears")
    op.drop_index("ix_messages_session", table_name="messages")
    op.drop_column("messages", "session_id")
