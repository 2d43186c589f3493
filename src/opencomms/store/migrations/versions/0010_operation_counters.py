"""operation stats as counters, maintained with the statuses they count

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_STATUSES = (
    "SCHEDULED", "QUEUED", "SENT", "DELIVERED", "READ", "UNDELIVERED", "FAILED", "CANCELED",
)  # fmt: skip
_COLUMNS = (*(f"n_{s.lower()}" for s in _STATUSES), "n_unaddressable", "n_attempts")


def _count(where: str, table: str = "messages") -> str:
    return f"(SELECT count(*) FROM {table} WHERE {table}.operation_id = operations.id AND {where})"


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        for name in _COLUMNS:
            batch.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
            )
    # Existing operations start from the aggregate of their rows, once.
    counts = {f"n_{s.lower()}": _count(f"status = '{s}' AND NOT unaddressable") for s in _STATUSES}
    counts["n_unaddressable"] = _count("unaddressable")
    counts["n_attempts"] = _count("1 = 1", "attempts")
    assignments = ", ".join(f"{name} = {query}" for name, query in counts.items())
    op.execute(f"UPDATE operations SET {assignments}")


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
