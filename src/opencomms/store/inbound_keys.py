"""Inbound messages already stored, by the route's key for them: a peer that never got its
acknowledgement (the process died between the write and the answer) delivers the message
again, and the second delivery must not store it twice."""

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.store.tables import inbound_keys


async def first_delivery(
    conn: AsyncConnection, key: str, now: int, repeat_after_ms: int | None
) -> bool:
    """Records `key` as stored now; False when it was stored before (within `repeat_after_ms`
    when given: the same digest later is the same text sent again, a new message).

    One statement, so two workers given the same redelivery at once cannot both win: on
    PostgreSQL the second waits for the first's commit and then finds its row.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(inbound_keys).values(key=key, received_at=now)
    if repeat_after_ms is None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[inbound_keys.c.key])
    else:
        stmt = stmt.on_conflict_do_update(
            index_elements=[inbound_keys.c.key],
            set_={"received_at": now},
            where=inbound_keys.c.received_at < now - repeat_after_ms,
        )
    result = await conn.execute(stmt.returning(inbound_keys.c.key))
    return result.first() is not None


async def prune(conn: AsyncConnection, older_than: int) -> int:
    """Forgets keys no redelivery can still match."""
    stale = inbound_keys.delete().where(inbound_keys.c.received_at < older_than)
    return int((await conn.execute(stale)).rowcount)
