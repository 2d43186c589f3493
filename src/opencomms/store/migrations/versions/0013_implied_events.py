"""event templates that stand for their events: an accept with no sink subscribed writes
the template alone, and its events become rows only when a replay asks for them

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_IMPLIED = "implied"
_ADDED = ("account_sid", "type", "sequence", "first_event_id", "first_subject", "count", "implied")


def upgrade() -> None:
    with op.batch_alter_table("event_templates") as batch:
        batch.add_column(sa.Column("account_sid", sa.String(length=34), nullable=True))
        batch.add_column(sa.Column("type", sa.String(length=96), nullable=True))
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("first_event_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("first_subject", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("count", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("implied", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
    op.create_index(
        "ix_event_templates_implied",
        "event_templates",
        ["account_sid", "created_at"],
        sqlite_where=sa.text(_IMPLIED),
        postgresql_where=sa.text(_IMPLIED),
    )


def downgrade() -> None:
    op.drop_index("ix_event_templates_implied", table_name="event_templates")
    with op.batch_alter_table("event_templates") as batch:
        for name in _ADDED:
            batch.drop_column(name)
