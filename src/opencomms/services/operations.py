"""Operations as the API and the console act on them."""

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.errors import NotFound
from opencomms.domain.records import OperationKind
from opencomms.store import reads
from opencomms.store.cancel import cancel_operation


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
