"""The choke point every status change goes through before its transaction commits.

Each fenced write (accept, cancel, the dispatcher's start and record steps, receipts pushed
and polled, inbound messages) reports what it moved into one StatusChanges; `settle` hands
that object to the operation counters and status, then to the outbox, in the caller's
transaction: a change, the counters that count it and the events that describe it commit or
roll back together.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.transitions import MessageTransition, OperationTransition, StatusChanges
from opencomms.events import outbox
from opencomms.store import operation_status
from opencomms.store.codec import loads


async def settle(conn: AsyncConnection, changes: StatusChanges, now: int) -> None:
    if not changes:
        return
    await operation_status.apply(conn, changes, now)  # appends the operations' transitions
    await outbox.emit(conn, changes.all(), now)


# The accept path: the operation row is written with its counters already counted
# (sends.operation_record), so only the events remain, built from the rows themselves.
_ID, _ACCOUNT, _OPERATION, _STATUS, _RECIPIENT, _TAGS = 0, 1, 2, 4, 5, 8
_UNADDRESSABLE, _CHANNEL, _SENDER, _CODE, _WHY = 10, 11, 12, 13, 14


def accepted(
    operation: tuple[str, str, str],
    chunks: Iterable[Sequence[Sequence[Any]]],
) -> StatusChanges:
    """The transitions of a send just accepted: every message from nothing to its first
    status, and the operation to its own. `operation` is (id, account, status); the chunks
    hold message rows in store/sends.MESSAGE_COLUMNS order."""
    op_id, account_sid, op_status = operation
    parse = _Memo()
    found = StatusChanges()
    for chunk in chunks:
        found.messages.extend(
            MessageTransition(
                row[_ID],
                row[_OPERATION],
                row[_ACCOUNT],
                None,
                row[_STATUS],
                0,
                row[_CODE],
                row[_WHY],
                None,
                row[_CHANNEL],
                parse(row[_SENDER]),
                loads(row[_RECIPIENT]),
                parse(row[_TAGS]),
                (),
                bool(row[_UNADDRESSABLE]),
            )
            for row in chunk
        )
    found.operations.append(OperationTransition(op_id, account_sid, None, op_status))
    return found


class _Memo:
    """JSON parsed once per distinct text (a send's rows share their sender and tags)."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {}

    def __call__(self, raw: str | None) -> Any:
        if raw is None:
            return None
        found = self._seen.get(raw)
        if found is None:
            found = self._seen[raw] = loads(raw)
        return found
