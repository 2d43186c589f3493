"""event templates for the accept's message events; the session index partial, id last

Revision ID: 0011
Revises: 0010b
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010b"
branch_labels = None
depends_on = None

_NOT_NULL = "session_id IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "event_templates",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_event_templates_created", "event_templates", ["created_at"])
    op.add_column("events", sa.Column("template_id", sa.String(length=64), nullable=True))
    op.drop_index("ix_messages_session", table_name="messages")
    op.create_index(
        "ix_messages_session",
        "messages",
        ["account_sid", "session_id", "id"],
        sqlite_where=sa.text(_NOT_NULL),
        postgresql_where=sa.text(_NOT_NULL),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_session", table_name="messages")
    op.create_index("ix_messages_session", "messages", ["account_sid", "session_id"])
    op.drop_column("events", "template_id")
    op.drop_index("ix_event_templates_created", table_name="event_templates")
    op.drop_table("event_templates")
