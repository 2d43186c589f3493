"""Canceling an operation (decision 8): stops what no channel has taken yet."""

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.status import NOT_HANDED_OFF, MessageStatus
from opencomms.domain.transitions import StatusChanges
from opencomms.store import changes as status_changes
from opencomms.store import queue
from opencomms.store.tables import attempts, messages


async def cancel_operation(
    conn: AsyncConnection, operation_id: str, now: int, message_id: str | None = None
) -> int:
    """Cancels the operation's messages not yet handed off (or only `message_id` of them,
    as deleting an email does); returns how many.

    A message with an attempt in flight (status QUEUED on the attempt row) is being handed to
    a channel right now and is left alone. Bumping the fencing token makes any worker that
    claimed a canceled message fail its hand-off write, so it never reaches a channel.
    """
    not_handed_off = [s.value for s in NOT_HANDED_OFF]
    only = [messages.c.id == message_id] if message_id is not None else []
    if conn.dialect.name == "postgresql":
        # Wait for any worker's hand-off write on these rows to commit first: the UPDATE
        # below then runs on a fresh snapshot and sees that worker's in-flight attempt.
        await conn.execute(
            select(messages.c.id)
            .where(
                messages.c.operation_id == operation_id,
                messages.c.status.in_(not_handed_off),
                *only,
            )
            .with_for_update()
        )
    in_flight = exists(
        select(attempts.c.id).where(
            and_(
                attempts.c.message_id == messages.c.id,
                attempts.c.status == MessageStatus.QUEUED,
            )
        )
    )
    changes = StatusChanges()
    for status in not_handed_off:  # one write per status: each row's transition is known
        stmt = (
            update(messages)
            .where(
                messages.c.operation_id == operation_id,
                messages.c.status == status,
                ~in_flight,
                *only,
            )
            .values(
                status=MessageStatus.CANCELED,
                lease_token=messages.c.lease_token + 1,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=None,
                updated_at=now,
            )
            .returning(*(messages.c[name] for name in queue.CONTEXT_COLUMNS))
        )
        returned = list(await conn.execute(stmt))
        move = queue.Move(status, MessageStatus.CANCELED)
        changes.add(queue.transitions(returned, {row[0]: move for row in returned}))
    await status_changes.settle(conn, changes, now)
    return len(changes.messages)
