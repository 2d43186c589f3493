"""The outbox: events are rows written in the caller's transaction, with one pending
delivery per subscribed sink, so a change and the events it causes commit or roll back
together."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.clock import rfc3339
from opencomms.domain.transitions import MessageTransition, OperationTransition, Transition
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


def _describe(transition: Transition, event_id: str, now: int, time: str) -> NewEvent | None:
    """The event a transition makes, or None (a message becoming SCHEDULED, a no-op)."""
    if transition.from_status == transition.to_status:
        return None
    if isinstance(transition, MessageTransition):
        kind = types.MESSAGE_TYPES.get(transition.to_status)
        if kind is None:
            return None
        seq = types.MESSAGE_SEQUENCE[transition.to_status]
        data = envelope.message_data(transition, seq)
        subject, source = transition.message_id, f"/v1/Messages/{transition.message_id}"
    else:
        assert isinstance(transition, OperationTransition)
        kind = types.OPERATION_TYPES[transition.to_status]
        seq = types.OPERATION_SEQUENCE[transition.to_status]
        data = envelope.operation_data(transition, seq)
        subject = transition.operation_id
        source = f"/v1/Messages/Operations/{transition.operation_id}"
    payload = envelope.envelope(event_id, kind, source, subject, time, data)
    return NewEvent(event_id, transition.account_sid, kind.type, subject, seq, payload)


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
    events. Runs inside the caller's transaction."""
    if not transitions:
        return 0
    event_ids = new_event_ids(len(transitions))
    time = rfc3339(now) or ""
    described = [_describe(t, i, now, time) for t, i in zip(transitions, event_ids, strict=True)]
    new = [e for e in described if e is not None]
    await store(conn, new, now)
    return len(new)


_EVENT_COLUMNS = ("id", "account_sid", "type", "subject", "sequence", "payload", "created_at")
_DELIVERY_COLUMNS = (
    "event_id",
    "sink_sid",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)


async def store(conn: AsyncConnection, new: Sequence[NewEvent], now: int) -> None:
    """Inserts events and one delivery per sink subscribed to each (set-based)."""
    if not new:
        return
    sinks = await subscribed_sinks(conn, {e.account_sid for e in new})
    await bulk.insert_records(
        conn,
        events,
        _EVENT_COLUMNS,
        [(e.id, e.account_sid, e.type, e.subject, e.sequence, dumps(e.payload), now) for e in new],
    )
    if not sinks:
        return
    due = [
        (e.id, sink, PENDING, 0, now, now, now)
        for e in new
        for sink in sinks.get((e.account_sid, e.type), ())
    ]
    await bulk.insert_records(conn, event_deliveries, _DELIVERY_COLUMNS, due)


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
