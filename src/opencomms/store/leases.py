"""Giving claimed messages back without an outcome, and the count of claims that stalled.

Three ways a claimed message goes back to the queue with no attempt used:
- `release`: it was never started (a worker stopping, a route known to be down);
- `give_back`: its worker lost the database mid-batch and gives back, once it answers again,
  what it had claimed and not handed off (unstarting those whose start may have committed);
- `unstart`: its hand-off was recorded as starting (attempt row in flight) but the channel was
  never called (stopping mid-batch, the route went down): the attempt row goes and the
  message's attempt count is put back, as if the claim had not happened.
Both are fenced by the lease token, like every write of a claimed message.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.store.codec import dumps
from opencomms.store.queue import Reschedule, _rows_source, reschedule, update_from
from opencomms.store.tables import messages


async def release(conn: AsyncConnection, rows: Sequence[Reschedule]) -> set[str]:
    """Claimed, never started: due again at `next_at`; returns the ids let through."""
    return await reschedule(conn, rows)


@dataclass(frozen=True, slots=True)
class Stray:
    """A claim its worker could not finish because the database went away."""

    id: str
    token: int
    status: str  # as claimed
    attempts: int  # as claimed: a hand-off that started counted one more
    operation_id: str
    # Its start (attempt row in flight) may have committed, and its hand-off surely did not
    # happen: then it is unstarted instead.
    start_unsure: bool = False

    def unstart(self, now: int) -> "Unstart":
        return Unstart(self.id, self.token, self.attempts + 1, now, self.operation_id)


async def give_back(conn: AsyncConnection, rows: Sequence[Stray], now: int) -> set[str]:
    """Due at once, its lease not left to lapse (which would count it stalled: a poison
    suspect); a message written or started since it was claimed is left as it is."""
    sql = (
        "UPDATE messages SET next_attempt_at = :now, lease_owner = NULL,"
        " lease_expires_at = NULL FROM {rows} WHERE messages.id = v.id"
        " AND messages.lease_token = v.token AND messages.status = v.status"
        " AND messages.attempt_count = v.attempts AND messages.lease_owner IS NOT NULL"
        " RETURNING messages.id"
    )
    columns = (("id", "text"), ("token", "int"), ("status", "text"), ("attempts", "int"))
    return await update_from(conn, sql, columns, rows, now=now)


@dataclass(frozen=True, slots=True)
class Unstart:
    id: str
    token: int
    number: int  # the attempt that was about to start
    next_at: int  # due again then (its pacing slot, if any, is given up)
    operation_id: str  # not written: tells the caller whose attempt counter goes down


_UNSTART_COLUMNS = (
    ("id", "text"),
    ("token", "int"),
    ("number", "int"),
    ("next_at", "int"),
)


async def unstart(conn: AsyncConnection, rows: Sequence[Unstart], now: int) -> list[str]:
    """Started, never handed over: the in-flight attempt row is removed and the attempt
    count put back; returns the operation of each one let through (one per attempt row
    removed, for the operation's attempt counter)."""
    sql = (
        "UPDATE messages SET attempt_count = v.number - 1, next_attempt_at = v.next_at,"
        " paced_at = NULL, lease_owner = NULL, lease_expires_at = NULL,"
        " updated_at = :now FROM {rows} WHERE messages.id = v.id"
        " AND messages.lease_token = v.token AND messages.status = 'QUEUED'"
        " AND messages.attempt_count = v.number RETURNING messages.id"
    )
    hit = await update_from(conn, sql, _UNSTART_COLUMNS, rows, now=now)
    gone = [r for r in rows if r.id in hit]
    if gone:
        source = _rows_source(conn.dialect.name, _UNSTART_COLUMNS)
        delete = (
            "DELETE FROM attempts WHERE attempts.status = 'QUEUED' AND EXISTS (SELECT 1"
            f" FROM {source} WHERE attempts.message_id = v.id AND attempts.number = v.number)"
        )
        await conn.execute(text(delete), {"rows": dumps(gone)})
    return [r.operation_id for r in gone]


async def reset_stalled(conn: AsyncConnection, message_ids: Iterable[str]) -> None:
    """An outcome was recorded: the claims that stalled before no longer count."""
    ids = list(message_ids)
    if ids:
        await conn.execute(
            update(messages)
            .where(messages.c.id.in_(ids), messages.c.stalled_claims > 0)
            .values(stalled_claims=0)
        )
