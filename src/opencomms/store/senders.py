"""The sender inventory: synced from the declared configuration, read by routing and the API."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import SenderRecord, SenderStatus
from opencomms.store.codec import dumps, loads
from opencomms.store.tables import senders


def record_of(row: Any) -> SenderRecord:
    return SenderRecord(
        id=row.id,
        account_sid=row.account_sid,
        channel=ChannelType(row.channel),
        address=row.address,
        route=row.route,
        mps=row.mps,
        display_name=row.display_name,
        status=SenderStatus(row.status),
        tags=loads(row.tags) or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def sync_declared(conn: AsyncConnection, declared: Sequence[SenderRecord], now: int) -> None:
    """Makes the table match the declaration: new senders inserted, changed ones updated
    (keeping their id and creation time), senders no longer declared DEACTIVATED."""
    existing = {r.id: r for r in map(record_of, (await conn.execute(select(senders))).all())}
    for sender in declared:
        values = {
            "account_sid": sender.account_sid,
            "channel": sender.channel.value,
            "address": sender.address,
            "route": sender.route,
            "mps": sender.mps,
            "display_name": sender.display_name,
            "status": SenderStatus.ACTIVATED.value,
            "tags": dumps(sender.tags),
        }
        old = existing.pop(sender.id, None)
        if old is None:
            await conn.execute(
                senders.insert().values(id=sender.id, created_at=now, updated_at=now, **values)
            )
        elif _changed(old, sender):
            await conn.execute(
                update(senders).where(senders.c.id == sender.id).values(updated_at=now, **values)
            )
    gone = [r.id for r in existing.values() if r.status == SenderStatus.ACTIVATED]
    if gone:
        await conn.execute(
            update(senders)
            .where(senders.c.id.in_(gone))
            .values(status=SenderStatus.DEACTIVATED.value, updated_at=now)
        )


def _changed(old: SenderRecord, new: SenderRecord) -> bool:
    keys = ("route", "mps", "display_name", "tags")
    return old.status != SenderStatus.ACTIVATED or any(
        getattr(old, k) != getattr(new, k) for k in keys
    )


async def for_account(
    conn: AsyncConnection, account_sid: str, *, active_only: bool = True
) -> list[SenderRecord]:
    """Every sender of an account, oldest id first."""
    stmt = select(senders).where(senders.c.account_sid == account_sid)
    if active_only:
        stmt = stmt.where(senders.c.status == SenderStatus.ACTIVATED.value)
    rows = (await conn.execute(stmt.order_by(senders.c.id))).all()
    return [record_of(row) for row in rows]


async def get(conn: AsyncConnection, account_sid: str, sender_id: str) -> SenderRecord | None:
    stmt = select(senders).where(senders.c.account_sid == account_sid, senders.c.id == sender_id)
    row = (await conn.execute(stmt)).first()
    return record_of(row) if row is not None else None
