"""Sender pools: created through the API, each a set of the account's senders."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.records import OperationFilter
from opencomms.domain.sender_pools import PoolFilter, PoolOperationRecord, SenderPoolRecord
from opencomms.domain.senders import SenderRecord
from opencomms.store.codec import dumps, loads
from opencomms.store.senders import record_of
from opencomms.store.tables import (
    sender_pool_operations,
    sender_pool_senders,
    sender_pools,
    senders,
)


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


def _live(account_sid: str) -> list[ColumnElement[bool]]:
    return [sender_pools.c.account_sid == account_sid, sender_pools.c.deleted_at.is_(None)]


def _pool(row: Any) -> SenderPoolRecord:
    return SenderPoolRecord(
        id=row.id,
        account_sid=row.account_sid,
        name=row.name,
        tags=loads(row.tags) or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def insert_pool(conn: AsyncConnection, pool: SenderPoolRecord) -> None:
    await conn.execute(
        sender_pools.insert().values(
            id=pool.id,
            account_sid=pool.account_sid,
            name=pool.name,
            tags=dumps(pool.tags),
            created_at=pool.created_at,
            updated_at=pool.updated_at,
        )
    )


async def get_pool(
    conn: AsyncConnection, account_sid: str, pool_id: str
) -> SenderPoolRecord | None:
    row = (
        await conn.execute(
            select(sender_pools).where(*_live(account_sid), sender_pools.c.id == pool_id)
        )
    ).first()
    return _pool(row) if row is not None else None


async def list_pools(
    conn: AsyncConnection, account_sid: str, f: PoolFilter, *, before_id: str | None, limit: int
) -> list[SenderPoolRecord]:
    """A page of the account's live pools, newest first (pool ids are ULIDs)."""
    where = _live(account_sid)
    if f.start is not None:
        where.append(sender_pools.c.created_at >= f.start)
    if f.end is not None:
        where.append(sender_pools.c.created_at <= f.end)
    if f.operation_id is not None:
        of_operation = select(sender_pool_operations.c.pool_id).where(
            sender_pool_operations.c.account_sid == account_sid,
            sender_pool_operations.c.id == f.operation_id,
        )
        where.append(sender_pools.c.id.in_(of_operation.scalar_subquery()))
    if before_id is not None:
        where.append(sender_pools.c.id < before_id)
    stmt = select(sender_pools).where(*where).order_by(sender_pools.c.id.desc()).limit(limit)
    return [_pool(row) for row in await conn.execute(stmt)]


async def update_pool(
    conn: AsyncConnection, account_sid: str, pool_id: str, changes: dict[str, Any], now: int
) -> bool:
    """Applies `name` and/or `tags`; False when the account has no such live pool."""
    values: dict[str, Any] = {"updated_at": now}
    if "name" in changes:
        values["name"] = changes["name"]
    if "tags" in changes:
        values["tags"] = dumps(changes["tags"])
    stmt = update(sender_pools).where(*_live(account_sid), sender_pools.c.id == pool_id)
    result = await conn.execute(stmt.values(**values))
    return bool(result.rowcount)


async def delete_pool(conn: AsyncConnection, account_sid: str, pool_id: str, now: int) -> bool:
    """Marks the pool deleted (messages sent through it still name it); False if unknown."""
    stmt = update(sender_pools).where(*_live(account_sid), sender_pools.c.id == pool_id)
    result = await conn.execute(stmt.values(deleted_at=now, updated_at=now))
    return bool(result.rowcount)


async def add_members(
    conn: AsyncConnection, account_sid: str, pool_id: str, sender_ids: Sequence[str], now: int
) -> None:
    """Links the senders to the pool; one already linked (even by a concurrent request) is
    left as it is."""
    unique = list(dict.fromkeys(sender_ids))
    if not unique:
        return
    rows = [
        {"pool_id": pool_id, "sender_id": s, "account_sid": account_sid, "created_at": now}
        for s in unique
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(sender_pool_senders).on_conflict_do_nothing()
    await conn.execute(stmt, rows)


async def remove_member(
    conn: AsyncConnection, account_sid: str, pool_id: str, sender_id: str
) -> bool:
    stmt = delete(sender_pool_senders).where(
        sender_pool_senders.c.account_sid == account_sid,
        sender_pool_senders.c.pool_id == pool_id,
        sender_pool_senders.c.sender_id == sender_id,
    )
    return bool((await conn.execute(stmt)).rowcount)


def _operation(row: Any) -> PoolOperationRecord:
    return PoolOperationRecord(
        id=row.id,
        pool_id=row.pool_id,
        status=row.status,
        total=row.total,
        queued=row.queued,
        created=row.created,
        failed=row.failed,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def insert_operation(
    conn: AsyncConnection, account_sid: str, operation: PoolOperationRecord
) -> None:
    await conn.execute(
        sender_pool_operations.insert().values(
            id=operation.id,
            account_sid=account_sid,
            pool_id=operation.pool_id,
            status=operation.status,
            total=operation.total,
            queued=operation.queued,
            created=operation.created,
            failed=operation.failed,
            created_at=operation.created_at,
            updated_at=operation.updated_at,
        )
    )


async def get_operation(
    conn: AsyncConnection, account_sid: str, operation_id: str
) -> PoolOperationRecord | None:
    stmt = select(sender_pool_operations).where(
        sender_pool_operations.c.account_sid == account_sid,
        sender_pool_operations.c.id == operation_id,
    )
    row = (await conn.execute(stmt)).first()
    return _operation(row) if row is not None else None


async def list_operations(
    conn: AsyncConnection,
    account_sid: str,
    f: OperationFilter,
    *,
    before_id: str | None,
    limit: int,
) -> list[PoolOperationRecord]:
    """A page of the account's pool operations, newest first (kept after a pool is deleted)."""
    table = sender_pool_operations
    where: list[ColumnElement[bool]] = [table.c.account_sid == account_sid]
    if f.start is not None:
        where.append(table.c.created_at >= f.start)
    if f.end is not None:
        where.append(table.c.created_at <= f.end)
    if f.status is not None:
        where.append(table.c.status == f.status)
    if before_id is not None:
        where.append(table.c.id < before_id)
    stmt = select(table).where(*where).order_by(table.c.id.desc()).limit(limit)
    return [_operation(row) for row in await conn.execute(stmt)]
