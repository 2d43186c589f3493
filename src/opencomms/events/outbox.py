"""The outbox: events are rows written in the caller's transaction, with one pending
delivery per subscribed sink, so a change and the events it causes commit or roll back
together."""

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.clock import rfc3339
from opencomms.domain.status import MessageStatus
from opencomms.domain.transitions import MessageTransition, Transition
from opencomms.events import envelope, types
from opencomms.store import bulk
from opencomms.store.codec import dumps
from opencomms.store.tables import (
    event_deliveries,
    event_subscribed_types,
    event_templates,
    events,
)

EVENT_PREFIX = "EV"
TEMPLATE_PREFIX = "ET"
PENDING = "pending"


class NewEvent(NamedTuple):  # a tuple: 100,000 of them are made per 33,000 messages
    id: str
    account_sid: str
    type: str
    subject: str
    sequence: int
    payload: str  # the CloudEvents envelope, JSON


class EventBatch(NamedTuple):
    """Message events alike but for their ids and their messages (the accept's, in a chunk
    of one send): stored as one template (tables.event_templates, envelope.fill) and a row
    each with an empty payload."""

    template_id: str
    template: str  # envelope.accepted_template
    channel: str | None  # of the `to` party
    account_sid: str
    type: str
    sequence: int
    event_ids: list[str]
    subjects: list[str]  # the message of each event, in the same order


class Accepted(NamedTuple):
    """The events of an accept: those written whole, and those written as templates."""

    events: list[NewEvent]
    batches: list[EventBatch]


def new_event_ids(count: int) -> list[str]:
    return [EVENT_PREFIX + u for u in ids.ulids(count)]


def new_template_id() -> str:
    return TEMPLATE_PREFIX + ids.ulid()


Step = tuple[types.EventType, int, str]  # type, sequence, the status it describes


def _message_steps(t: MessageTransition) -> list[Step]:
    """A message transition's events: one per status it reached, those passed on the way
    (`via`) first, each with its sequence number."""
    found = []
    for status in (*t.via, t.to_status):
        kind = types.MESSAGE_TYPES.get(status)
        if kind is not None:  # SCHEDULED is not an event
            found.append((kind, types.MESSAGE_SEQUENCE[status], status))
    return found


def describe(
    transitions: Sequence[Transition], now: int, event_ids: Sequence[str] | None = None
) -> list[NewEvent]:
    """The events the transitions make, in order (a transition that moved nothing: none).

    Message events, nearly all of them, are written straight to JSON text
    (envelope.message_texts); the few others go through the envelope's dicts."""
    time = rfc3339(now) or ""
    planned: list[tuple[Transition, list[Step]]] = []
    for t in transitions:
        if t.from_status == t.to_status:
            continue
        if isinstance(t, MessageTransition):
            if t.to_status == MessageStatus.INBOUND:
                planned.append((t, [(types.INBOUND_TYPE, 1, t.to_status)]))
            else:
                planned.append((t, _message_steps(t)))
        else:
            kind = types.OPERATION_TYPES[t.to_status]
            planned.append((t, [(kind, types.OPERATION_SEQUENCE[t.to_status], t.to_status)]))
    count = sum(len(steps) for _, steps in planned)
    ids_left = iter(event_ids if event_ids is not None else new_event_ids(count))
    made: list[NewEvent] = []
    for t, steps in planned:
        mine = [next(ids_left) for _ in steps]
        if isinstance(t, MessageTransition):
            subject = t.message_id
            if t.to_status == MessageStatus.INBOUND:
                kind, seq, _ = steps[0]
                data = envelope.inbound_data(t, seq)
                source = f"/v1/Messages/{subject}"
                texts = [dumps(envelope.envelope(mine[0], kind, source, subject, time, data))]
            else:
                texts = envelope.message_texts(t, steps, mine, time)
        else:
            kind, seq, _ = steps[0]
            subject, source = t.operation_id, f"/v1/Messages/Operations/{t.operation_id}"
            data = envelope.operation_data(t, seq)
            texts = [dumps(envelope.envelope(mine[0], kind, source, subject, time, data))]
        account = t.account_sid
        for event_id, (kind, seq, _), text in zip(mine, steps, texts, strict=True):
            made.append(NewEvent(event_id, account, kind.type, subject, seq, text))
    return made


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
    return [(*e, now) for e in new]  # a NewEvent is the columns but created_at, in order


TEMPLATE_COLUMNS = (
    "id", "text", "channel", "created_at",
    "account_sid", "type", "sequence", "first_event_id", "first_subject", "count", "implied",
)  # fmt: skip


def template_record(batch: EventBatch, now: int, implied: bool) -> tuple[Any, ...]:
    return (
        batch.template_id,
        batch.template,
        batch.channel,
        now,
        batch.account_sid,
        batch.type,
        batch.sequence,
        batch.event_ids[0],
        batch.subjects[0],
        len(batch.event_ids),
        implied,
    )


def can_imply(batch: EventBatch, sinks: dict[tuple[str, str], list[str]]) -> bool:
    """Whether the batch's template alone may stand for its events: no sink wants them now
    (so no delivery refers to them) and their ids and messages are runs (ids.is_run), so
    the template says which they are. A replay writes them out (`realize`)."""
    return (
        not sinks.get((batch.account_sid, batch.type))
        and ids.is_run(batch.event_ids)
        and ids.is_run(batch.subjects)
    )


def templated_events(batch: EventBatch, now: int) -> bulk.Shared:
    """The batch's event rows: their ids and subjects, the rest alike."""
    shared = (batch.account_sid, batch.type, batch.sequence, "", batch.template_id, now)
    rows = list(zip(batch.event_ids, batch.subjects, strict=True))
    return bulk.Shared(events.name, ("id", "subject"), _TEMPLATED_SHARED, shared, rows)


_TEMPLATED_SHARED = ("account_sid", "type", "sequence", "payload", "template_id", "created_at")


async def realize(
    conn: AsyncConnection, account_sid: str, since: int, event_types: Sequence[str]
) -> int:
    """Writes the account's implied events (`can_imply`) created since `since`, of these
    types, as the rows an accept writes when a sink wants them: before a replay, which
    delivers stored rows. Returns how many."""
    t = event_templates.c
    query = select(
        t.id, t.type, t.sequence, t.first_event_id, t.first_subject, t.count, t.created_at
    ).where(
        t.implied,
        t.account_sid == account_sid,
        t.created_at >= since,
        t.type.in_(sorted(event_types)),
    )
    found = (await conn.execute(query)).all()
    written = 0
    for template_id, kind, seq, first_id, subject, count, created in found:
        batch = EventBatch(
            template_id=template_id,
            template="",  # the rows name their template, whose text stays where it is
            channel=None,
            account_sid=account_sid,
            type=kind,
            sequence=seq,
            event_ids=ids.ulid_run(first_id, count),
            subjects=ids.ulid_run(subject, count),
        )
        # Created when their template was: the accept's time, as if written then.
        await bulk.insert_shared(conn, templated_events(batch, created))
        written += count
    if found:
        realized = [row.id for row in found]
        await conn.execute(update(event_templates).where(t.id.in_(realized)).values(implied=False))
    return written


def batch_deliveries(
    batches: Sequence[EventBatch], sinks: dict[tuple[str, str], list[str]], now: int
) -> list[tuple[Any, ...]]:
    """delivery_records for the events of batches."""
    return [
        (event_id, sink, PENDING, 0, now, now, now)
        for batch in batches
        for sink in sinks.get((batch.account_sid, batch.type), ())
        for event_id in batch.event_ids
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


async def store(
    conn: AsyncConnection,
    new: Sequence[NewEvent],
    now: int,
    batches: Sequence[EventBatch] = (),
) -> None:
    """Inserts events and one delivery per sink subscribed to each: one multi-row insert
    each (set-based), whatever the number of events."""
    if not new and not batches:
        return
    accounts = {e.account_sid for e in new} | {b.account_sid for b in batches}
    sinks = await subscribed_sinks(conn, accounts)
    await bulk.insert_records(conn, events, EVENT_COLUMNS, event_records(new, now))
    for batch in batches:
        implied = can_imply(batch, sinks)
        template = template_record(batch, now, implied)
        await bulk.insert_records(conn, event_templates, TEMPLATE_COLUMNS, [template])
        if not implied:
            await bulk.insert_shared(conn, templated_events(batch, now))
    due = delivery_records(new, sinks, now) + batch_deliveries(batches, sinks, now)
    if due:
        await bulk.insert_records(conn, event_deliveries, DELIVERY_COLUMNS, due)


_SUBSCRIBED_SQL = (
    "SELECT account_sid, type, sink_sid FROM event_subscribed_types WHERE account_sid = ?"
)


def store_sync(
    conn: sqlite3.Connection,
    new: Sequence[NewEvent],
    now: int,
    batches: Sequence[EventBatch] = (),
) -> None:
    """`store` for a group-committed SQLite send (store/group_commit.py): the same rows,
    written by the group's own sqlite3 connection inside its transaction."""
    if not new and not batches:
        return
    sinks: dict[tuple[str, str], list[str]] = {}
    accounts = {e.account_sid for e in new} | {b.account_sid for b in batches}
    for account in sorted(accounts):
        for account_sid, kind, sink in conn.execute(_SUBSCRIBED_SQL, (account,)):
            sinks.setdefault((account_sid, kind), []).append(sink)
    conn.executemany(bulk.insert_sql(events.name, EVENT_COLUMNS), event_records(new, now))
    for batch in batches:
        implied = can_imply(batch, sinks)
        template = template_record(batch, now, implied)
        conn.execute(bulk.insert_sql(event_templates.name, TEMPLATE_COLUMNS), template)
        if not implied:
            bulk.insert_shared_sync(conn, templated_events(batch, now))
    due = delivery_records(new, sinks, now) + batch_deliveries(batches, sinks, now)
    if due:
        conn.executemany(bulk.insert_sql(event_deliveries.name, DELIVERY_COLUMNS), due)


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


# The accounts that have events, one index probe each (a loose index scan): events are
# indexed by account and time only, so that each event written updates one index fewer.
_ACCOUNTS_WITH_EVENTS = sql(
    "WITH RECURSIVE a(sid) AS ("
    " SELECT MIN(account_sid) FROM events"
    " UNION ALL SELECT (SELECT MIN(account_sid) FROM events WHERE account_sid > a.sid)"
    " FROM a WHERE a.sid IS NOT NULL)"
    " SELECT sid FROM a WHERE sid IS NOT NULL"
)


async def prune(conn: AsyncConnection, now: int, retention_ms: int) -> int:
    """Deletes events past the retention period, with their delivery rows and templates (a
    template is as old as its events); account by account, on their (account, time) index."""
    cutoff = now - retention_ms
    pruned = 0
    for account_sid in list((await conn.execute(_ACCOUNTS_WITH_EVENTS)).scalars()):
        old = events.c.account_sid == account_sid, events.c.created_at < cutoff
        ids = select(events.c.id).where(*old).scalar_subquery()
        await conn.execute(delete(event_deliveries).where(event_deliveries.c.event_id.in_(ids)))
        result = await conn.execute(delete(events).where(*old))
        pruned += int(result.rowcount or 0)
    await conn.execute(delete(event_templates).where(event_templates.c.created_at < cutoff))
    return pruned
