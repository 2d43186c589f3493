"""events: the index on time alone dropped (pruning goes by account and time)

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_created", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_created", "events", ["created_at"])
