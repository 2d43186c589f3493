"""Operations as the API and the console act on them."""

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.errors import NotFound
from opencomms.domain.records import (
    OperationFilter,
    OperationKind,
    OperationRecord,
    OperationStats,
)
from opencomms.store import reads
from opencomms.store.cancel import cancel_operation
from opencomms.store.db import Database


async def list_operations(
    db: Database,
    account_sid: str,
    wanted: OperationFilter,
    *,
    before_id: str | None,
    limit: int,
    shown: int,
    kind: OperationKind,
) -> tuple[list[OperationRecord], dict[str, OperationStats]]:
    """Up to `limit` operations of one API, newest first, and the stats of the first `shown`
    (the rest only tells whether another page follows)."""
    async with db.read() as conn:
        records = await reads.list_operations(
            conn, account_sid, wanted, before_id=before_id, limit=limit, kind=kind
        )
        stats = await reads.operation_stats(conn, [r.id for r in records[:shown]])
    return records, stats


async def get_operation(
    db: Database, account_sid: str, operation_id: str, kind: OperationKind
) -> tuple[OperationRecord, OperationStats]:
    """An operation of one API with its stats; NotFound across accounts and APIs."""
    async with db.read() as conn:
        record = await reads.get_operation(conn, account_sid, operation_id)
        if record is None or record.kind != kind:
            raise NotFound(f"Operation {operation_id}")
        stats = await reads.operation_stats(conn, [operation_id])
    return record, stats[operation_id]


async def cancel(
    conn: AsyncConnection,
    account_sid: str,
    operation_id: str,
    now: int,
    kind: OperationKind = OperationKind.MESSAGES,
) -> int:
    """Cancels what no channel has taken yet; NotFound for another account's operation or
    one of the other API (a Messages cancel never touches an Emails operation)."""
    record = await reads.get_operation(conn, account_sid, operation_id)
    if record is None or record.kind != kind:
        raise NotFound(f"Operation {operation_id}")
    return await cancel_operation(conn, operation_id, now)
