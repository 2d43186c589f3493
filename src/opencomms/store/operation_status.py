"""operations.status as a derived column: always the aggregate of the operation's messages.

Every transaction that changes message statuses calls `refresh` for their operations before it
commits, so the stored status never disagrees with the rows it summarizes. The rule itself is
`aggregate`; `refresh` only gathers the facts it needs with index probes (EXISTS on
operation_id + status), never by counting 10,000 rows.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from opencomms.domain.status import MessageStatus, OperationStatus
from opencomms.store.tables import messages, operations

_ACTIVE = (MessageStatus.QUEUED, MessageStatus.SENT)
_PROGRESSED = (MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.UNDELIVERED)


@dataclass(frozen=True, slots=True)
class Facts:
    """What an operation's status depends on, about its messages."""

    active: bool  # some message is queued or handed off and awaiting its fate
    scheduled: bool  # some message waits for its send time
    progressed: (
        bool  # some message was dispatched and reached a fate (not counting accept-time failures)
    )
    canceled: bool  # some message was canceled


def aggregate(facts: Facts) -> OperationStatus:
    """SCHEDULED until the first message is dispatched, PROCESSING until every message is
    final, then CANCELED if a cancel stopped any of them, else COMPLETED."""
    if facts.active:
        return OperationStatus.PROCESSING
    if facts.scheduled:
        return OperationStatus.PROCESSING if facts.progressed else OperationStatus.SCHEDULED
    return OperationStatus.CANCELED if facts.canceled else OperationStatus.COMPLETED


def _has(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists(select(literal(1)).where(messages.c.operation_id == operations.c.id, *where))


def _facts_query(operation_ids: list[str]) -> Select[Any]:
    failed_dispatched = and_(messages.c.status == MessageStatus.FAILED, ~messages.c.unaddressable)
    return select(
        operations.c.id,
        operations.c.status,
        _has(messages.c.status.in_(_ACTIVE)),
        _has(messages.c.status == MessageStatus.SCHEDULED),
        _has(messages.c.status.in_(_PROGRESSED)) | _has(failed_dispatched),
        _has(messages.c.status == MessageStatus.CANCELED),
    ).where(operations.c.id.in_(operation_ids))


async def refresh(conn: AsyncConnection, operation_ids: set[str], now: int) -> None:
    """Brings each operation's status to the aggregate of its messages, inside the caller's
    transaction."""
    if not operation_ids:
        return
    ordered = sorted(operation_ids)
    if conn.dialect.name == "postgresql":
        # Serialize per operation: two workers finishing its last messages at once would each
        # miss the other's uncommitted rows and both leave it PROCESSING. The lock waits for
        # the other transaction; the facts are read by the next statement, which sees it.
        lock = select(operations.c.id).where(operations.c.id.in_(ordered))
        await conn.execute(lock.order_by(operations.c.id).with_for_update())
    changed: dict[OperationStatus, list[str]] = {}
    for op_id, current, *flags in await conn.execute(_facts_query(ordered)):
        new = aggregate(Facts(*(bool(f) for f in flags)))
        if new != current:
            changed.setdefault(new, []).append(op_id)
    for new, ids in changed.items():
        await conn.execute(
            update(operations).where(operations.c.id.in_(ids)).values(status=new, updated_at=now)
        )
