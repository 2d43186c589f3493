"""routes, plans and pacing: each message's planned routes, its current sender, its pacing
slot; each attempt's route and further ids; the shared per-sender pacing state

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("plan", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sender_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("paced_at", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_messages_sender_pending",
        "messages",
        ["sender_id"],
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
    )
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("route", sa.String(length=64), nullable=True))
    op.create_table(
        "sender_pacing",
        sa.Column("sender_id", sa.String(length=64), primary_key=True),
        sa.Column("next_slot", sa.Float(), nullable=False),
    )
    op.create_table(
        "attempt_parts",
        sa.Column("external_id", sa.String(length=128), primary_key=True),
        sa.Column("primary_id", sa.String(length=128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attempt_parts")
    op.drop_table("sender_pacing")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("route")
    op.drop_index("ix_messages_sender_pending", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("paced_at")
        batch.drop_column("sender_id")
        batch.drop_column("plan")
