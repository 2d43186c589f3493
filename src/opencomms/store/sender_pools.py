"""Sender pools: created through the API, each a set of the account's senders."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.senders import SenderRecord
from opencomms.store.senders import record_of
from opencomms.store.tables import sender_pool_senders, sender_pools, senders


async def members(
    conn: AsyncConnection, account_sid: str, pool_id: str
) -> list[SenderRecord] | None:
    """The pool's senders (active or not), oldest first; None when the account has no such
    pool (deleted pools included)."""
    pool = await conn.execute(
        select(sender_pools.c.id).where(
            sender_pools.c.account_sid == account_sid,
            sender_pools.c.id == pool_id,
            sender_pools.c.deleted_at.is_(None),
        )
    )
    if pool.first() is None:
        return None
    stmt = (
        select(senders)
        .join(sender_pool_senders, sender_pool_senders.c.sender_id == senders.c.id)
        .where(sender_pool_senders.c.pool_id == pool_id, senders.c.account_sid == account_sid)
        .order_by(senders.c.id)
    )
    return [record_of(row) for row in (await conn.execute(stmt)).all()]
