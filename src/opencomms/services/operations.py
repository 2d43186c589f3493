"""Operations as the API and the console act on them."""

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.errors import NotFound
from opencomms.store import reads
from opencomms.store.cancel import cancel_operation


async def cancel(conn: AsyncConnection, account_sid: str, operation_id: str, now: int) -> int:
    """Cancels what no channel has taken yet; NotFound for another account's operation."""
    if await reads.get_operation(conn, account_sid, operation_id) is None:
        raise NotFound(f"Operation {operation_id}")
    return await cancel_operation(conn, operation_id, now)
