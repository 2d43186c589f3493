"""The parts of a long SMS: each its own SMSC id and its own receipt.

A hand-off that got several ids (one per part) has a row per part in `attempt_parts`, its
first part included (primary_id = its own id). A part's receipt is recorded on its row; the
attempt, and through it the message, moves only on the verdict of all its parts: DELIVERED
once every part is, UNDELIVERED as soon as one is.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.status import MessageStatus
from opencomms.store.queue import update_from
from opencomms.store.receipts import ReceiptRow
from opencomms.store.tables import attempt_parts

_SETTLED = (MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


@dataclass(frozen=True, slots=True)
class _PartWrite:
    id: str
    status: str


async def parts_of(conn: AsyncConnection, primary_ids: Iterable[str]) -> list[str]:
    """Every part id of these hand-offs (their own ids included when they have parts)."""
    ids = list(primary_ids)
    if not ids:
        return []
    query = select(attempt_parts.c.external_id).where(attempt_parts.c.primary_id.in_(ids))
    return list((await conn.execute(query)).scalars())


async def fold_parts(conn: AsyncConnection, rows: Sequence[ReceiptRow]) -> list[ReceiptRow]:
    """Receipts with the ones about parts replaced by their hand-off's verdict, if there is
    one yet; receipts about no part pass unchanged (oldest first, as given)."""
    ids = {r.external_id for r in rows}
    if not ids:
        return list(rows)
    owner = select(attempt_parts.c.primary_id).where(attempt_parts.c.external_id.in_(ids))
    siblings = (
        select(attempt_parts.c.external_id, attempt_parts.c.primary_id, attempt_parts.c.status)
        .where(attempt_parts.c.primary_id.in_(owner.scalar_subquery()))
        .order_by(attempt_parts.c.external_id)
    )
    if conn.dialect.name == "postgresql":
        # Two workers settling two parts of one message at once must see each other's part.
        siblings = siblings.with_for_update()
    found = (await conn.execute(siblings)).all()
    if not found:
        return list(rows)
    primary = {r.external_id: r.primary_id for r in found}
    status = {r.external_id: r.status for r in found}
    decisive: dict[str, ReceiptRow] = {}  # primary -> the receipt that settles it
    writes: list[_PartWrite] = []
    kept: list[ReceiptRow] = []
    for row in rows:
        if row.external_id not in primary:
            kept.append(row)
            continue
        if row.status not in _SETTLED or status[row.external_id] is not None:
            continue  # a part's first final receipt is its outcome
        status[row.external_id] = row.status
        writes.append(_PartWrite(row.external_id, row.status))
        decisive.setdefault(primary[row.external_id], row)
        if row.status == MessageStatus.UNDELIVERED:
            decisive[primary[row.external_id]] = row
    await _write_statuses(conn, writes)
    return kept + [
        verdict
        for head, row in decisive.items()
        if (verdict := _verdict(head, row, [s for p, s in status.items() if primary[p] == head]))
    ]


def _verdict(head: str, row: ReceiptRow, statuses: list[str | None]) -> ReceiptRow | None:
    """The hand-off's receipt once its parts decide it, else None (parts still to come)."""
    if row.status == MessageStatus.UNDELIVERED:
        return ReceiptRow(head, row.status, row.error_code, row.error_message, True)
    if all(s == MessageStatus.DELIVERED for s in statuses):
        return ReceiptRow(head, MessageStatus.DELIVERED.value, None, None, row.final)
    return None


async def _write_statuses(conn: AsyncConnection, writes: Sequence[_PartWrite]) -> None:
    sql = (
        "UPDATE attempt_parts SET status = v.status FROM {rows}"
        " WHERE attempt_parts.external_id = v.id AND attempt_parts.status IS NULL"
        " RETURNING attempt_parts.external_id"
    )
    await update_from(conn, sql, (("id", "text"), ("status", "text")), writes)
