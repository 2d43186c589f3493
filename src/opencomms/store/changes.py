"""The choke point every status change goes through before its transaction commits.

Each fenced write (accept, cancel, the dispatcher's start and record steps, receipts pushed
and polled, inbound messages) reports what it moved into one StatusChanges; `settle` hands
that object to the operation counters and status, then to the outbox, in the caller's
transaction: a change, the counters that count it and the events that describe it commit or
roll back together.
"""

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.transitions import StatusChanges
from opencomms.events import outbox
from opencomms.store import operation_status


async def settle(conn: AsyncConnection, changes: StatusChanges, now: int) -> None:
    if not changes:
        return
    await operation_status.apply(conn, changes, now)  # appends the operations' transitions
    await outbox.emit(conn, changes.all(), now)


# The accept path has no transitions: its events are made from the rows it writes
# (store/sends.accepted_events).
