"""The outbox: events are rows written in the caller's transaction, with one pending
delivery per subscribed sink, so a change and the events it causes commit or roll back
together."""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.clock import rfc3339
from opencomms.domain.status import MessageStatus
from opencomms.domain.transitions import MessageTransition, Transition
from opencomms.events import envelope, types
from opencomms.store import bulk
from opencomms.store.codec import dumps
from opencomms.store.tables import event_deliveries, event_subscribed_types, events

EVENT_PREFIX = "EV"
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: str
    account_sid: str
    type: str
    subject: str
    sequence: int
    payload: dict[str, Any]


def new_event_ids(count: int) -> list[str]:
    return [EVENT_PREFIX + u for u in ids.ulids(count)]


def _message_events(t: MessageTransition) -> list[tuple[types.EventType, int, dict[str, Any]]]:
    """A message transition's events: one per status it reached, those passed on the way
    (`via`) first, each with its sequence number."""
    if t.to_status == MessageStatus.INBOUND:
        return [(types.INBOUND_TYPE, 1, envelope.inbound_data(t, 1))]
    found = []
    for status in (*t.via, t.to_status):
        kind = types.MESSAGE_TYPES.get(status)
        if kind is None:
            continue  # SCHEDULED: not an event
        seq = types.MESSAGE_SEQUENCE[status]
        final = status == t.to_status
        found.append((kind, seq, envelope.message_data(t, seq, status, final)))
    return found


def describe(transitions: Sequence[Transition], now: int) -> list[NewEvent]:
    """The events the transitions make, in order (a transition that moved nothing: none)."""
    time = rfc3339(now) or ""
    made: list[tuple[str, str, str, types.EventType, int, dict[str, Any]]] = []
    for t in transitions:
        if t.from_status == t.to_status:
            continue
        if isinstance(t, MessageTransition):
            source = f"/v1/Messages/{t.message_id}"
            for kind, seq, data in _message_events(t):
                made.append((t.account_sid, t.message_id, source, kind, seq, data))
        else:
            kind = types.OPERATION_TYPES[t.to_status]
            seq = types.OPERATION_SEQUENCE[t.to_status]
            source = f"/v1/Messages/Operations/{t.operation_id}"
            data = envelope.operation_data(t, seq)
            made.append((t.account_sid, t.operation_id, source, kind, seq, data))
    event_ids = new_event_ids(len(made))
    return [
        NewEvent(
            event_id,
            account,
            kind.type,
            subject,
            seq,
            envelope.envelope(event_id, kind, source, subject, time, data),
        )
        for event_id, (account, subject, source, kind, seq, data) in zip(
            event_ids, made, strict=True
        )
    ]


async def subscribed_sinks(
    conn: AsyncConnection, account_sids: set[str]
) -> dict[tuple[str, str], list[str]]:
    """(account, type) -> the sinks subscribed to it."""
    query = select(
        event_subscribed_types.c.account_sid,
        event_subscribed_types.c.type,
        event_subscribed_types.c.sink_sid,
    ).where(event_subscribed_types.c.account_sid.in_(sorted(account_sids)))
    found: dict[tuple[str, str], list[str]] = {}
    for account, kind, sink in await conn.execute(query):
        found.setdefault((account, kind), []).append(sink)
    return found


async def emit(conn: AsyncConnection, transitions: Sequence[Transition], now: int) -> int:
    """Writes the events of `transitions` and their pending deliveries; returns how many
    events. Runs inside the caller's transaction (store/changes.settle calls it)."""
    if not transitions:
        return 0
    new = describe(transitions, now)
    await store(conn, new, now)
    return len(new)


EVENT_COLUMNS = ("id", "account_sid", "type", "subject", "sequence", "payload", "created_at")
DELIVERY_COLUMNS = (
    "event_id",
    "sink_sid",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)


def event_records(new: Sequence[NewEvent], now: int) -> list[tuple[Any, ...]]:
    """Event rows in EVENT_COLUMNS order."""
    return [
        (e.id, e.account_sid, e.type, e.subject, e.sequence, dumps(e.payload), now) for e in new
    ]


def delivery_records(
    new: Sequence[NewEvent], sinks: dict[tuple[str, str], list[str]], now: int
) -> list[tuple[Any, ...]]:
    """One pending delivery row (DELIVERY_COLUMNS order) per sink subscribed to each event."""
    if not sinks:
        return []
    return [
        (e.id, sink, PENDING, 0, now, now, now)
        for e in new
        for sink in sinks.get((e.account_sid, e.type), ())
    ]


async def store(conn: AsyncConnection, new: Sequence[NewEvent], now: int) -> None:
    """Inserts events and one delivery per sink subscribed to each: one multi-row insert
    each (set-based), whatever the number of events."""
    if not new:
        return
    sinks = await subscribed_sinks(conn, {e.account_sid for e in new})
    await bulk.insert_records(conn, events, EVENT_COLUMNS, event_records(new, now))
    due = delivery_records(new, sinks, now)
    if due:
        await bulk.insert_records(conn, event_deliveries, DELIVERY_COLUMNS, due)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


_SUBSCRIBED_SQL = (
    "SELECT account_sid, type, sink_sid FROM event_subscribed_types WHERE account_sid = ?"
)


def store_sync(conn: sqlite3.Connection, new: Sequence[NewEvent], now: int) -> None:
    """`store` for a group-committed SQLite send (store/group_commit.py): the same rows,
    written by the group's own sqlite3 connection inside its transaction."""
    if not new:
        return
    sinks: dict[tuple[str, str], list[str]] = {}
    for account in sorted({e.account_sid for e in new}):
        for account_sid, kind, sink in conn.execute(_SUBSCRIBED_SQL, (account,)):
            sinks.setdefault((account_sid, kind), []).append(sink)
    conn.executemany(_insert_sql(events.name, EVENT_COLUMNS), event_records(new, now))
    due = delivery_records(new, sinks, now)
    if due:
        conn.executemany(_insert_sql(event_deliveries.name, DELIVERY_COLUMNS), due)


def pending(event_id: str, sink_sid: str, now: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "sink_sid": sink_sid,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


async def prune(conn: AsyncConnection, now: int, retention_ms: int) -> int:
    """Deletes events past the retention period, with their delivery rows."""
    cutoff = now - retention_ms
    old = select(events.c.id).where(events.c.created_at < cutoff).scalar_subquery()
    await conn.execute(delete(event_deliveries).where(event_deliveries.c.event_id.in_(old)))
    result = await conn.execute(delete(events).where(events.c.created_at < cutoff))
    return int(result.rowcount or 0)
