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

from opencomms.clock import rfc3339
from opencomms.domain.transitions import OperationTransition, StatusChanges
from opencomms.events import envelope, outbox, types
from opencomms.store import operation_status
from opencomms.store.codec import loads


async def settle(conn: AsyncConnection, changes: StatusChanges, now: int) -> None:
    if not changes:
        return
    await operation_status.apply(conn, changes, now)  # appends the operations' transitions
    await outbox.emit(conn, changes.all(), now)


# The accept path: the operation row is written with its counters already counted
# (sends.operation_record), so only the events remain. They are made straight from the message
# rows (store/sends.MESSAGE_COLUMNS order), without a transition object per message: accept is
# the hottest write there is, and its events are all alike (message.queued, or .failed for a
# recipient no route reaches).
_ID, _ACCOUNT, _OPERATION, _STATUS, _RECIPIENT, _TAGS = 0, 1, 2, 4, 5, 8
_CHANNEL, _SENDER, _CODE, _WHY = 11, 12, 13, 14


def accepted_events(
    operation: tuple[str, str, str], chunks: Iterable[Sequence[Sequence[Any]]], now: int
) -> list[outbox.NewEvent]:
    """The events of a send just accepted: each message's first (message.queued, or
    message.failed when unaddressable; none while SCHEDULED), then the operation's.
    `operation` is (id, account, status)."""
    op_id, account_sid, op_status = operation
    rows = [row for chunk in chunks for row in chunk if row[_STATUS] in types.MESSAGE_TYPES]
    event_ids = outbox.new_event_ids(len(rows) + 1)
    time = rfc3339(now) or ""
    party = _Parties()
    made = []
    for event_id, row in zip(event_ids, rows, strict=False):
        status = row[_STATUS]
        kind, seq = types.MESSAGE_TYPES[status], types.MESSAGE_SEQUENCE[status]
        text = envelope.accepted_text(
            event_id,
            kind,
            seq,
            row,
            party(row[_SENDER], row[_CHANNEL]),
            envelope.party_text(loads(row[_RECIPIENT]), row[_CHANNEL]),
            time,
        )
        made.append(outbox.NewEvent(event_id, row[_ACCOUNT], kind.type, row[_ID], seq, text))
    moved = OperationTransition(op_id, account_sid, None, op_status)
    made += outbox.describe([moved], now, [event_ids[-1]])
    return made


class _Parties:
    """A sender's `from` as JSON text, made once per distinct sender (a send shares few)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str | None, str | None], str] = {}

    def __call__(self, raw: str | None, channel: str | None) -> str:
        key = (raw, channel)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = envelope.party_text(loads(raw), channel)
        return found
