"""events: the outbox, sinks, subscriptions and per-sink deliveries

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DUE = "next_attempt_at IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("type", sa.String(length=96), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_events_account_created", "events", ["account_sid", "created_at"])
    op.create_index("ix_events_created", "events", ["created_at"])
    op.create_table(
        "event_sinks",
        sa.Column("sid", sa.String(length=34), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("sink_type", sa.String(length=16), nullable=False),
        sa.Column("configuration", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("test_event_id", sa.String(length=64), nullable=True),
        sa.Column("lease_token", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("blocked_until", sa.BigInteger(), nullable=False),
        sa.Column("last_success_at", sa.BigInteger(), nullable=True),
        sa.Column("last_failure_at", sa.BigInteger(), nullable=True),
        sa.Column("last_failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_event_sinks_account_sid", "event_sinks", ["account_sid", "sid"])
    op.create_table(
        "event_subscriptions",
        sa.Column("sid", sa.String(length=34), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("sink_sid", sa.String(length=34), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_event_subscriptions_account_sid", "event_subscriptions", ["account_sid", "sid"]
    )
    op.create_index("ix_event_subscriptions_sink", "event_subscriptions", ["sink_sid"])
    op.create_table(
        "event_subscribed_types",
        sa.Column("subscription_sid", sa.String(length=34), primary_key=True),
        sa.Column("type", sa.String(length=96), primary_key=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("sink_sid", sa.String(length=34), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_event_subscribed_types_account", "event_subscribed_types", ["account_sid", "type"]
    )
    op.create_table(
        "event_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("sink_sid", sa.String(length=34), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_event_deliveries_event_sink",
        "event_deliveries",
        ["event_id", "sink_sid"],
        unique=True,
    )
    op.create_index(
        "ix_event_deliveries_due",
        "event_deliveries",
        ["sink_sid", "next_attempt_at"],
        sqlite_where=sa.text(_DUE),
        postgresql_where=sa.text(_DUE),
    )


def downgrade() -> None:
    for table in (
        "event_deliveries",
        "event_subscribed_types",
        "event_subscriptions",
        "event_sinks",
        "events",
    ):
        op.drop_table(table)
