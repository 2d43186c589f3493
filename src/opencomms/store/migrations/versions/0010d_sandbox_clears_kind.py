"""sandbox clears say which inbox they clear: the Messages' or the Emails'

Revision ID: 0010d
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010d"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL (the clears made before this column): both inboxes, as they hid every attempt.
    op.add_column("sandbox_clears", sa.Column("kind", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sandbox_clears") as batch:
        batch.drop_column("kind")
