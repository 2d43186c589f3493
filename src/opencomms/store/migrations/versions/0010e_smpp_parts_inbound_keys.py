"""smpp: each long SMS part's own receipt status; keys of inbound messages already stored

Revision ID: 0010e
Revises: 0010f
"""

import sqlalchemy as sa
from alembic import op

revision = "0010e"
down_revision = "0010f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempt_parts") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=True))
    op.create_index("ix_attempt_parts_primary", "attempt_parts", ["primary_id"])
    op.create_table(
        "inbound_keys",
        sa.Column("key", sa.String(length=128), primary_key=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_inbound_keys_received", "inbound_keys", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_keys_received", table_name="inbound_keys")
    op.drop_table("inbound_keys")
    op.drop_index("ix_attempt_parts_primary", table_name="attempt_parts")
    with op.batch_alter_table("attempt_parts") as batch:
        batch.drop_column("status")
