"""Sender pools: create, rename, delete, and change their members.

Every change is done inside the request's transaction: its operation is COMPLETED when the
202 goes out. A sender id that is not one of the account's senders (unknown, or another
account's) refuses the whole request at its field, so nothing is half done.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.domain import errors
from opencomms.domain.errors import NotFound, Problem, ValidationFailed
from opencomms.domain.records import OperationFilter
from opencomms.domain.send import MAX_PROBLEMS
from opencomms.domain.sender_pools import PoolFilter, PoolOperationRecord, SenderPoolRecord
from opencomms.domain.senders import SENDER_POOL_PREFIX, SENDER_PREFIX
from opencomms.domain.status import OperationStatus
from opencomms.store import sender_pools, senders
from opencomms.store.db import Database


@dataclass(frozen=True)
class PoolDraft:
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # The request's sender ids by position; None where the schema check refused the item.
    sender_ids: Sequence[str | None] = ()


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ValidationFailed(problems[:MAX_PROBLEMS])


async def _unknown_senders(
    conn: AsyncConnection, account_sid: str, sender_ids: Sequence[str | None], path: str
) -> list[Problem]:
    """A problem for every id that is not one of the account's senders."""
    wanted = [s for s in sender_ids if s is not None and ids.is_well_formed(s, SENDER_PREFIX)]
    known = await senders.existing_ids(conn, account_sid, wanted)
    return [
        Problem(
            errors.INVALID_PARAMETER, f"You have no Sender {sender_id}", f"{path}[{i}].senderId"
        )
        for i, sender_id in enumerate(sender_ids)
        if sender_id is not None and sender_id not in known
    ]


def _completed(pool_id: str, count: int, now: int) -> PoolOperationRecord:
    return PoolOperationRecord(
        id=ids.operation_id(),
        pool_id=pool_id,
        status=OperationStatus.COMPLETED.value,
        total=count,
        queued=0,
        created=count,
        failed=0,
        created_at=now,
        updated_at=now,
    )


async def create_pool(
    db: Database,
    account_sid: str,
    draft: PoolDraft,
    now: int,
    *,
    prior: Sequence[Problem] = (),
    senders_path: str = "$.senders",
) -> PoolOperationRecord:
    """Creates the pool with its first members; `prior` problems (the schema check's) refuse
    it together with any found here."""
    async with db.write() as conn:
        problems = list(prior)
        problems += await _unknown_senders(conn, account_sid, draft.sender_ids, senders_path)
        _raise_if(problems)
        pool_id = SENDER_POOL_PREFIX + ids.ulid(now)
        pool = SenderPoolRecord(pool_id, account_sid, draft.name, draft.tags, now, now)
        await sender_pools.insert_pool(conn, pool)
        members = [s for s in draft.sender_ids if s is not None]
        await sender_pools.add_members(conn, account_sid, pool_id, members, now)
        operation = _completed(pool_id, len(members), now)
        await sender_pools.insert_operation(conn, account_sid, operation)
    return operation


async def add_senders(
    db: Database,
    account_sid: str,
    pool_id: str,
    sender_ids: Sequence[str | None],
    now: int,
    *,
    prior: Sequence[Problem] = (),
    path: str = "$",
) -> PoolOperationRecord:
    """Adds members (one already there stays, and counts as created: it is a member now)."""
    async with db.write() as conn:
        await live_pool(conn, account_sid, pool_id)
        problems = list(prior) + await _unknown_senders(conn, account_sid, sender_ids, path)
        _raise_if(problems)
        members = [s for s in sender_ids if s is not None]
        await sender_pools.add_members(conn, account_sid, pool_id, members, now)
        operation = _completed(pool_id, len(members), now)
        await sender_pools.insert_operation(conn, account_sid, operation)
    return operation


async def live_pool(conn: AsyncConnection, account_sid: str, pool_id: str) -> SenderPoolRecord:
    """The account's pool, not deleted; NotFound otherwise (another account's included)."""
    if ids.is_well_formed(pool_id, SENDER_POOL_PREFIX):
        pool = await sender_pools.get_pool(conn, account_sid, pool_id)
        if pool is not None:
            return pool
    raise NotFound(f"SenderPool {pool_id}")


async def get_pool(db: Database, account_sid: str, pool_id: str) -> SenderPoolRecord:
    async with db.read() as conn:
        return await live_pool(conn, account_sid, pool_id)


async def list_pools(
    db: Database, account_sid: str, f: PoolFilter, *, before_id: str | None, limit: int
) -> list[SenderPoolRecord]:
    async with db.read() as conn:
        return await sender_pools.list_pools(conn, account_sid, f, before_id=before_id, limit=limit)


async def update_pool(
    db: Database,
    account_sid: str,
    pool_id: str,
    changes: dict[str, Any],
    now: int,
    *,
    prior: Sequence[Problem] = (),
) -> None:
    """Applies `name` and/or `tags` (tags are replaced as a whole)."""
    async with db.write() as conn:
        await live_pool(conn, account_sid, pool_id)
        _raise_if(list(prior))
        await sender_pools.update_pool(conn, account_sid, pool_id, changes, now)


async def delete_pool(db: Database, account_sid: str, pool_id: str, now: int) -> None:
    async with db.write() as conn:
        await live_pool(conn, account_sid, pool_id)
        await sender_pools.delete_pool(conn, account_sid, pool_id, now)


async def remove_sender(db: Database, account_sid: str, pool_id: str, sender_id: str) -> None:
    """Takes a sender out of the pool; NotFound when it is not a member."""
    async with db.write() as conn:
        await live_pool(conn, account_sid, pool_id)
        removed = ids.is_well_formed(sender_id, SENDER_PREFIX) and await sender_pools.remove_member(
            conn, account_sid, pool_id, sender_id
        )
    if not removed:
        raise NotFound(f"Sender {sender_id} in SenderPool {pool_id}")


async def get_operation(db: Database, account_sid: str, operation_id: str) -> PoolOperationRecord:
    if ids.is_well_formed(operation_id, ids.OPERATION_PREFIX):
        async with db.read() as conn:
            found = await sender_pools.get_operation(conn, account_sid, operation_id)
        if found is not None:
            return found
    raise NotFound(f"SenderPool Operation {operation_id}")


async def list_operations(
    db: Database, account_sid: str, f: OperationFilter, *, before_id: str | None, limit: int
) -> list[PoolOperationRecord]:
    async with db.read() as conn:
        return await sender_pools.list_operations(
            conn, account_sid, f, before_id=before_id, limit=limit
        )
