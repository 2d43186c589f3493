"""operations.status and the operation stats, as counters kept by the writes that move them.

Every transaction that changes message statuses collects its transitions in a StatusChanges
(domain/transitions.py) and, before it commits, hands them to `apply` (through
store/changes.settle, which also writes their events). `apply` adds each transition's
delta to the operation's per-status counters in one statement, and derives the status from
the counters it returns. The counters are written by nothing else, in the same transaction
as the statuses they count, so they cannot drift; `aggregate_stats` recomputes them from the
message rows for tests and repairs. The status rule itself is `aggregate`.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.records import OperationStats
from opencomms.domain.status import MessageStatus, OperationStatus
from opencomms.domain.transitions import OperationTransition, StatusChanges
from opencomms.store.queue import update_returning
from opencomms.store.tables import COUNTED_STATUSES, COUNTER_COLUMNS, attempts, messages, operations

UNADDRESSABLE = "n_unaddressable"
ATTEMPTS = "n_attempts"


def counter(status: str) -> str:
    return f"n_{status.lower()}"


@dataclass(frozen=True, slots=True)
class Facts:
    """What an operation's status depends on, about its messages."""

    active: bool  # some message is queued or handed off and awaiting its fate
    scheduled: bool  # some message waits for its send time
    progressed: bool  # some message was dispatched and reached a fate (not accept failures)
    canceled: bool  # some message was canceled


def aggregate(facts: Facts) -> OperationStatus:
    """SCHEDULED until the first message is dispatched, PROCESSING until every message is
    final, then CANCELED if a cancel stopped any of them, else COMPLETED."""
    if facts.active:
        return OperationStatus.PROCESSING
    if facts.scheduled:
        return OperationStatus.PROCESSING if facts.progressed else OperationStatus.SCHEDULED
    return OperationStatus.CANCELED if facts.canceled else OperationStatus.COMPLETED


def facts_of(counts: Mapping[str, int]) -> Facts:
    """The facts, from the counters (FAILED counts only dispatched failures)."""
    progressed = (MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.UNDELIVERED)
    return Facts(
        active=counts[counter(MessageStatus.QUEUED)] + counts[counter(MessageStatus.SENT)] > 0,
        scheduled=counts[counter(MessageStatus.SCHEDULED)] > 0,
        progressed=sum(counts[counter(s)] for s in (*progressed, MessageStatus.FAILED)) > 0,
        canceled=counts[counter(MessageStatus.CANCELED)] > 0,
    )


def initial_counts(statuses: Iterable[tuple[str, bool, int]]) -> dict[str, int]:
    """The counters of a new operation whose messages start in these (status,
    unaddressable, how many messages)."""
    counts = dict.fromkeys(COUNTER_COLUMNS, 0)
    for status, unaddressable, count in statuses:
        counts[UNADDRESSABLE if unaddressable else counter(status)] += count
    return counts


def _deltas(changes: StatusChanges) -> dict[str, dict[str, int]]:
    """Per operation, what each counter gains (or loses)."""
    deltas: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTER_COLUMNS, 0))
    for t in changes.messages:
        if t.from_status == t.to_status or not t.operation_id:
            continue  # no move, or an INBOUND message (no operation)
        d = deltas[t.operation_id]
        if t.unaddressable:
            d[UNADDRESSABLE] += 1
            continue
        if t.from_status is not None:
            d[counter(t.from_status)] -= 1
        d[counter(t.to_status)] += 1
    for op_id, count in changes.attempts.items():
        deltas[op_id][ATTEMPTS] += count
    return deltas


_DELTA_COLUMNS = (("id", "text"), *((name, "int") for name in COUNTER_COLUMNS))
_APPLY_SQL = (
    "UPDATE operations SET "
    + ", ".join(f"{name} = operations.{name} + v.{name}" for name in COUNTER_COLUMNS)
    + " FROM {rows} WHERE operations.id = v.id RETURNING operations.id, operations.account_sid,"
    " operations.status, " + ", ".join(f"operations.{name}" for name in COUNTER_COLUMNS)
)


async def apply(conn: AsyncConnection, changes: StatusChanges, now: int) -> None:
    """Adds the changes to their operations' counters and brings each operation's status to
    what the counters say, appending its OperationTransitions to `changes`; in the caller's
    transaction."""
    deltas = _deltas(changes)
    if not deltas:
        return
    ordered = sorted(deltas)
    if conn.dialect.name == "postgresql":
        # Row locks in one order, so two workers finishing messages of the same operations
        # never deadlock; the UPDATE below then reads the other's committed counters.
        lock = select(operations.c.id).where(operations.c.id.in_(ordered))
        await conn.execute(lock.order_by(operations.c.id).with_for_update())
    rows = [{"id": op_id, **deltas[op_id]} for op_id in ordered]
    returned = await update_returning(conn, _APPLY_SQL, _DELTA_COLUMNS, rows)
    changed: dict[OperationStatus, list[str]] = defaultdict(list)
    for row in returned:
        op_id, account_sid, current, *values = row
        new = aggregate(facts_of(dict(zip(COUNTER_COLUMNS, values, strict=True))))
        if new != current:
            changed[new].append(op_id)
            changes.operations.append(OperationTransition(op_id, account_sid, current, new))
    for new, op_ids in changed.items():
        await conn.execute(
            update(operations).where(operations.c.id.in_(op_ids)).values(status=new, updated_at=now)
        )


def stats_of(values: Mapping[str, int]) -> OperationStats:
    by_status = {s: values[counter(s)] for s in COUNTED_STATUSES if values[counter(s)]}
    total = sum(by_status.values()) + values[UNADDRESSABLE]
    return OperationStats(
        total=total,
        recipients=total,
        attempts=values[ATTEMPTS],
        unaddressable=values[UNADDRESSABLE],
        by_status=by_status,
    )


def stats_from_row(row: Row[Any]) -> OperationStats:
    """Stats from an operations row read with its counter columns."""
    m = row._mapping
    return stats_of({name: int(m[name]) for name in COUNTER_COLUMNS})


async def operation_stats(
    conn: AsyncConnection, operation_ids: list[str]
) -> dict[str, OperationStats]:
    """Stats of several operations, reading only their operations rows."""
    if not operation_ids:
        return {}
    columns = [operations.c[name] for name in COUNTER_COLUMNS]
    query = select(operations.c.id, *columns).where(operations.c.id.in_(operation_ids))
    return {row.id: stats_from_row(row) for row in await conn.execute(query)}


async def aggregate_stats(
    conn: AsyncConnection, operation_ids: list[str]
) -> dict[str, OperationStats]:
    """The same stats recomputed from every message and attempt row: what the counters must
    always equal (tests check them against it after every lifecycle path)."""
    counts = (
        select(messages.c.operation_id, messages.c.status, messages.c.unaddressable, func.count())
        .where(messages.c.operation_id.in_(operation_ids))
        .group_by(messages.c.operation_id, messages.c.status, messages.c.unaddressable)
    )
    tries = (
        select(attempts.c.operation_id, func.count())
        .where(attempts.c.operation_id.in_(operation_ids))
        .group_by(attempts.c.operation_id)
    )
    values = {op: dict.fromkeys(COUNTER_COLUMNS, 0) for op in operation_ids}
    for op, status, unaddressable, count in await conn.execute(counts):
        values[op][UNADDRESSABLE if unaddressable else counter(status)] += int(count)
    for op, count in await conn.execute(tries):
        values[op][ATTEMPTS] = int(count)
    return {op: stats_of(v) for op, v in values.items()}
