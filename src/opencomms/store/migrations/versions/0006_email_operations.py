"""emails: operations know which API created them (MESSAGES or EMAILS)

Emails live in the messages table beside messages (their ids start comms_email_), so
dispatch, retries, receipts, cancel and Seek serve both; only operations need a kind, since
both APIs' operation ids share the comms_operation_ prefix.

Revision ID: 0006
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(
            sa.Column(
                "kind", sa.String(length=16), nullable=False, server_default=sa.text("'MESSAGES'")
            )
        )
    op.create_index("ix_operations_account_kind_id", "operations", ["account_sid", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_operations_account_kind_id", table_name="operations")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("kind")
