"""The sender inventory: synced from the declared configuration, read by routing and the API."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.channels import ChannelType
from opencomms.domain.records import SenderFilter
from opencomms.domain.senders import SenderRecord, SenderStatus
from opencomms.store.codec import dumps, loads
from opencomms.store.tables import sender_pool_senders, senders


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
    # Set-based: one INSERT and one UPDATE statement for all, however many accounts there
    # are (every account's defaults are synced at each start).
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
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
            inserts.append({"id": sender.id, "created_at": now, "updated_at": now, **values})
        elif _changed(old, sender):
            updates.append({"sender_id": sender.id, "updated_at": now, **values})
    if inserts:
        await conn.execute(senders.insert(), inserts)
    if updates:
        changed = update(senders).where(senders.c.id == bindparam("sender_id"))
        await conn.execute(changed, updates)
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


async def list_senders(
    conn: AsyncConnection,
    account_sid: str,
    f: SenderFilter,
    *,
    before_id: str | None,
    limit: int,
    pool_id: str | None = None,
) -> list[SenderRecord]:
    """A page of an account's senders (of one pool, if given), in descending id order: ids are
    derived, not time-ordered, so this order is only stable, not newest first."""
    where: list[ColumnElement[bool]] = [senders.c.account_sid == account_sid]
    if f.channel is not None:
        where.append(senders.c.channel == f.channel)
    if f.status is not None:
        where.append(senders.c.status == f.status)
    if f.address is not None:
        where.append(senders.c.address == f.address)
    if f.start is not None:
        where.append(senders.c.created_at >= f.start)
    if f.end is not None:
        where.append(senders.c.created_at <= f.end)
    if before_id is not None:
        where.append(senders.c.id < before_id)
    stmt = select(senders)
    if pool_id is not None:
        stmt = stmt.join(sender_pool_senders, sender_pool_senders.c.sender_id == senders.c.id)
        where.append(sender_pool_senders.c.pool_id == pool_id)
    rows = await conn.execute(stmt.where(*where).order_by(senders.c.id.desc()).limit(limit))
    return [record_of(row) for row in rows]


async def existing_ids(conn: AsyncConnection, account_sid: str, ids: Sequence[str]) -> set[str]:
    """Which of these ids are senders of the account (any status)."""
    found: set[str] = set()
    unique = sorted(set(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        stmt = select(senders.c.id).where(
            senders.c.account_sid == account_sid, senders.c.id.in_(chunk)
        )
        found.update(row.id for row in await conn.execute(stmt))
    return found


_CHUNK = 1000  # ids per IN list: far below either dialect's parameter limit
