"""Writing a send: one operation row and all its message rows in one transaction."""

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import islice
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.clock import rfc3339
from opencomms.domain import errors
from opencomms.domain.pacing import backlog_seconds
from opencomms.domain.routing import AccountSenders, Plan, SenderSpec
from opencomms.domain.send import PreparedSend, Recipient
from opencomms.domain.status import MessageStatus, OperationStatus
from opencomms.domain.transitions import OperationTransition
from opencomms.events import envelope, outbox, types
from opencomms.store import bulk, idempotency, queue, sender_pools, senders
from opencomms.store.codec import dumps, loads
from opencomms.store.db import Database
from opencomms.store.operation_status import initial_counts
from opencomms.store.tables import COUNTER_COLUMNS, events, messages, operations


async def account_senders(
    conn: AsyncConnection, account_sid: str, spec: SenderSpec | None
) -> AccountSenders:
    """What routing may choose from for this account's send (read before the write)."""
    pool_id = spec.pool_lookup if spec is not None else None
    pool = await sender_pools.members(conn, account_sid, pool_id) if pool_id else None
    return AccountSenders(await senders.for_account(conn, account_sid, active_only=False), pool)


async def full_senders(
    conn: AsyncConnection,
    prepared: PreparedSend,
    available: AccountSenders,
    validity_seconds: float,
    context: str,
) -> list[errors.Problem]:
    """Paced senders this send would overfill: what already waits for them plus what this
    send adds would take longer than the validity period at their rate, so some would
    expire unsent. Refused at accept time rather than accepted and failed later."""
    rates = {s.id: s.mps for s in available.senders if s.mps > 0}
    if not rates:
        return []
    by_plan = Counter(id(plan) for plan in prepared.plans if plan is not None)
    plans = {id(plan): plan for plan in prepared.plans if plan is not None}
    adding: Counter[str] = Counter()
    for key, count in by_plan.items():
        first = plans[key].first.sender_id
        if first in rates:
            adding[first] += count
    if not adding:
        return []
    query = (
        select(messages.c.sender_id, func.count())
        .where(
            messages.c.sender_id.in_(list(adding)),
            messages.c.next_attempt_at.is_not(None),
            messages.c.status == MessageStatus.QUEUED.value,
        )
        .group_by(messages.c.sender_id)
    )
    waiting = {row[0]: int(row[1]) for row in await conn.execute(query)}
    problems = []
    for sender_id, count in adding.items():
        mps, queued = rates[sender_id], waiting.get(sender_id, 0)
        seconds = backlog_seconds(queued, count, mps)
        if seconds > validity_seconds:
            record = next(s for s in available.senders if s.id == sender_id)
            problems.append(
                errors.Problem(
                    errors.SENDER_BACKLOG_FULL,
                    f"Sender {record.address} ({record.channel.value}, {mps:g} messages per"
                    f" second) has {queued} messages waiting; {count} more would take"
                    f" {seconds:.0f}s to send, past the {validity_seconds:.0f}s validity period",
                    context,
                )
            )
    return problems


def operation_status(prepared: PreparedSend) -> str:
    if prepared.all_unaddressable:
        return OperationStatus.COMPLETED
    return OperationStatus.SCHEDULED if prepared.send_at_ms else OperationStatus.PROCESSING


# Columns written at accept time; the rest of the table takes its server defaults. A
# message's own columns, then those of its route (the same for every recipient with the same
# tags, schedule and plan: nearly always the whole send), then those of its send.
OWN_COLUMNS = ("id", "position", "recipient", "variables", "profile_id")
ROUTE_COLUMNS = (
    "status", "tags", "send_at", "unaddressable", "channel", "sender", "error_code",
    "error_message", "next_attempt_at", "plan", "sender_id",
)  # fmt: skip
SEND_COLUMNS = (
    "account_sid",
    "operation_id",
    "attempt_count",
    "lease_token",
    "created_at",
    "updated_at",
)
MESSAGE_COLUMNS = OWN_COLUMNS + ROUTE_COLUMNS + SEND_COLUMNS
_QUEUED = MessageStatus.QUEUED.value
_SCHEDULED = MessageStatus.SCHEDULED.value
_FAILED = MessageStatus.FAILED.value


CHUNK = 2000
ONE_STATEMENT_MAX = 100  # PostgreSQL: up to this many recipients, one statement (no COPY)
# Past this many distinct routes (tags rendered per recipient, say), a send's chunks carry
# each message's route in its row: a chunk per route would mean many tiny statements.
MAX_ROUTES = 16


def message_records(
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    now: int,
    prefix: str = ids.MESSAGE_PREFIX,
) -> Iterator[bulk.Shared]:
    """The send's messages (ids starting with `prefix`) in chunks of up to CHUNK, as
    bulk.Shared batches whose records are in MESSAGE_COLUMNS order: each chunk is one route's
    (its rows OWN_COLUMNS) or, for a send of many routes, of any (OWN_COLUMNS + ROUTE_COLUMNS).
    Each chunk's rows are made as it is asked for, so a COPY can send one while the next is
    made."""
    send = (account_sid, operation_id, 0, 0, now, now)
    message_ids = ids.ulids(len(prepared.recipients))
    single = _single_route(prepared)
    if single is not None:
        groups: list[tuple[tuple[Any, ...], Sequence[int]]] = [
            (_route_values(prepared, *single, now), range(len(prepared.recipients)))
        ]
    else:
        keyed = list(zip(prepared.tags, prepared.send_at, prepared.plans, strict=True))
        # The very same objects for a whole send, nearly always (PreparedSend).
        keys = [(id(tags), send_at, id(plan)) for tags, send_at, plan in keyed]
        routes: dict[tuple[int, int | None, int], tuple[Any, ...]] = {}
        for key, (tags, send_at, plan) in zip(keys, keyed, strict=True):
            if key not in routes:
                routes[key] = _route_values(prepared, tags, send_at, plan, now)
        if len(routes) > MAX_ROUTES:
            columns = OWN_COLUMNS + ROUTE_COLUMNS
            for start in range(0, len(keys), CHUNK):
                positions = range(start, min(start + CHUNK, len(keys)))
                own = _own_rows(prepared, prefix, message_ids, positions)
                rows = [row + routes[keys[p]] for row, p in zip(own, positions, strict=True)]
                yield _chunk(columns, SEND_COLUMNS, send, rows)
            return
        by_route: dict[tuple[int, int | None, int], list[int]] = {}
        for position, key in enumerate(keys):
            by_route.setdefault(key, []).append(position)
        groups = [(routes[key], positions) for key, positions in by_route.items()]
    for values, route_positions in groups:
        shared = values + send
        for start in range(0, len(route_positions), CHUNK):
            own = _own_rows(prepared, prefix, message_ids, route_positions[start : start + CHUNK])
            yield _chunk(OWN_COLUMNS, ROUTE_COLUMNS + SEND_COLUMNS, shared, own)


def _single_route(prepared: PreparedSend) -> tuple[dict[str, str], int | None, Plan | None] | None:
    """The tags, schedule and plan of every message, when they are alike for all (most
    sends: counted in C, without a key per message); else None."""
    if not prepared.recipients:
        return None
    tags, send_at, plan = prepared.tags[0], prepared.send_at[0], prepared.plans[0]
    count = len(prepared.recipients)
    alike = (
        prepared.tags.count(tags) == count
        and prepared.send_at.count(send_at) == count
        and prepared.plans.count(plan) == count
    )
    return (tags, send_at, plan) if alike else None


def _chunk(
    columns: tuple[str, ...],
    shared_columns: tuple[str, ...],
    shared: tuple[Any, ...],
    rows: list[tuple[Any, ...]],
) -> bulk.Shared:
    return bulk.Shared(messages.name, columns, shared_columns, shared, rows)


def _own_rows(
    prepared: PreparedSend, prefix: str, message_ids: list[str], positions: Sequence[int]
) -> list[tuple[Any, ...]]:
    """OWN_COLUMNS values of the messages at these positions, in order."""
    recipients = prepared.recipients
    return [
        (
            prefix + message_ids[position],
            position,
            _recipient_text(recipient),
            dumps(recipient.variables) if recipient.variables else None,
            recipient.profile_id,
        )
        for position, recipient in zip(
            positions, map(recipients.__getitem__, positions), strict=True
        )
    ]


def _recipient_text(recipient: Recipient) -> str:
    """dumps(recipient.as_json()); the one-address form, nearly every message's, written
    straight (a dict made and serialized per message cost 10,000 of them 4 ms, this 2.5).
    Not for kinds of recipient that say more (an email's name: EmailRecipient)."""
    if type(recipient) is not Recipient or recipient.connected or len(recipient.addresses) != 1:
        return dumps(recipient.as_json())
    address, channel = recipient.addresses[0]
    return f'{{"address":{dumps(address)},"channel":{dumps(channel)}}}'


def _route_values(
    prepared: PreparedSend,
    tags: dict[str, str],
    send_at: int | None,
    plan: Plan | None,
    now: int,
) -> tuple[Any, ...]:
    """ROUTE_COLUMNS values of the messages with these tags, schedule and plan."""
    if plan is None:
        sender = prepared.requested_sender
        status, due, code, why = _FAILED, None, errors.CANNOT_ROUTE, errors.NO_ROUTE_MESSAGE
    else:
        sender = plan.first
        status = _QUEUED if send_at is None else _SCHEDULED
        due, code, why = send_at or now, None, None
    return (
        status,
        dumps(tags),
        send_at,
        code is not None,
        sender.channel,
        dumps(sender.as_json()),
        code,
        why,
        due,
        dumps(plan.as_json()) if plan is not None else None,
        sender.sender_id if plan is not None else None,
    )


# The accept's events: the operation row is written with its counters already counted
# (sends.operation_record), so only the events remain. They are made straight from the
# chunks of message rows, without a transition object per message: accept is the hottest
# write there is, and the events of one route are alike (message.queued, or .failed for
# recipients no route reaches). From TEMPLATED_FROM messages of one route in a chunk, their
# events are one template (outbox.EventBatch) instead of a text each.
TEMPLATED_FROM = 101  # above the sends PostgreSQL writes in one statement, which have none
_ROUTE = {name: i for i, name in enumerate(ROUTE_COLUMNS)}
_OWN_ID, _OWN_RECIPIENT = OWN_COLUMNS.index("id"), OWN_COLUMNS.index("recipient")
_ROUTE_START = len(OWN_COLUMNS)


def accepted_events(
    operation: tuple[str, str, str], chunks: Iterable[bulk.Shared], now: int
) -> outbox.Accepted:
    """The events of a send just accepted: each message's first (message.queued, or
    message.failed when unaddressable; none while SCHEDULED), then the operation's, with ids
    in that order. `operation` is (id, account, status); `chunks` sends.message_records'."""
    op_id, account_sid, op_status = operation
    by_route = [(route, rows) for chunk in chunks for route, rows in _routes_of(chunk)]
    eventful = [(r, rows) for r, rows in by_route if r[_ROUTE["status"]] in types.MESSAGE_TYPES]
    event_ids = iter(outbox.new_event_ids(sum(len(rows) for _, rows in eventful) + 1))
    time = rfc3339(now) or ""
    made: list[outbox.NewEvent] = []
    batches: list[outbox.EventBatch] = []
    for route, rows in eventful:
        status, channel = route[_ROUTE["status"]], route[_ROUTE["channel"]]
        kind, seq = types.MESSAGE_TYPES[status], types.MESSAGE_SEQUENCE[status]
        facts = _facts(account_sid, op_id, route)
        mine = list(islice(event_ids, len(rows)))
        if len(rows) >= TEMPLATED_FROM:
            batches.append(
                outbox.EventBatch(
                    template_id=outbox.new_template_id(),
                    template=envelope.accepted_template(kind, seq, facts, time),
                    channel=channel,
                    account_sid=account_sid,
                    type=kind.type,
                    sequence=seq,
                    event_ids=mine,
                    subjects=[row[_OWN_ID] for row in rows],
                )
            )
            continue
        for event_id, row in zip(mine, rows, strict=True):
            to = envelope.party_text(loads(row[_OWN_RECIPIENT]), channel)
            text = envelope.accepted_text(event_id, kind, seq, row[_OWN_ID], facts, to, time)
            made.append(outbox.NewEvent(event_id, account_sid, kind.type, row[_OWN_ID], seq, text))
    moved = OperationTransition(op_id, account_sid, None, op_status)
    made += outbox.describe([moved], now, [next(event_ids)])
    return outbox.Accepted(made, batches)


def _routes_of(chunk: bulk.Shared) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """The chunk's rows by route (ROUTE_COLUMNS values), in order of first appearance."""
    if chunk.columns == OWN_COLUMNS:
        return [(chunk.shared[: len(ROUTE_COLUMNS)], chunk.rows)] if chunk.rows else []
    grouped: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in chunk.rows:
        grouped.setdefault(row[_ROUTE_START:], []).append(row)
    return list(grouped.items())


def _facts(account_sid: str, operation_id: str, route: tuple[Any, ...]) -> envelope.AcceptFacts:
    def value(name: str) -> Any:
        return route[_ROUTE[name]]

    return envelope.AcceptFacts(
        account_sid,
        operation_id,
        value("status"),
        value("tags"),
        value("error_code"),
        value("error_message"),
        envelope.party_text(loads(value("sender")), value("channel")),
    )


async def insert_chunks(conn: AsyncConnection, chunks: Sequence[bulk.Shared]) -> None:
    """The message rows, in the caller's transaction."""
    await bulk.insert_all_shared(conn, chunks)


OPERATION_COLUMNS = (
    "id", "account_sid", "status", "content", "sender", "send_at", "created_at", "updated_at",
    *COUNTER_COLUMNS,
)  # fmt: skip


def operation_counts(prepared: PreparedSend) -> tuple[int, ...]:
    """The operation's stats counters at accept (store/operation_status keeps them after)."""
    unaddressable = prepared.plans.count(None)
    scheduled = 0
    if prepared.send_at.count(None) < len(prepared.send_at):  # some message has a send time
        pairs = zip(prepared.plans, prepared.send_at, strict=True)
        scheduled = sum(1 for plan, at in pairs if plan is not None and at is not None)
    queued = len(prepared.plans) - unaddressable - scheduled
    counts = initial_counts(
        [("", True, unaddressable), (_SCHEDULED, False, scheduled), (_QUEUED, False, queued)]
    )
    return tuple(counts[name] for name in COUNTER_COLUMNS)


def operation_record(
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    content: dict[str, Any],
    sender: dict[str, Any] | None,
    now: int,
) -> tuple[Any, ...]:
    """The operation row, in OPERATION_COLUMNS order."""
    return (
        operation_id,
        account_sid,
        operation_status(prepared),
        dumps(content),
        dumps(sender) if sender is not None else None,
        prepared.send_at_ms,
        now,
        now,
        *operation_counts(prepared),
    )


_SQLITE_INSERT_OPERATION = bulk.insert_sql(operations.name, OPERATION_COLUMNS)


async def write_send(
    db: Database,
    *,
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    content: dict[str, Any],
    sender: dict[str, Any] | None,
    now: int,
    answer: idempotency.Answer | None = None,
) -> None:
    """Writes a send atomically and returns once it is committed; `answer`, the 202 of an
    Idempotency-Key, commits with it (in the same transaction or statement).

    On a SQLite file the send joins a group commit (store/group_commit.py). On PostgreSQL a
    small send is one statement in one round trip; a large one a transaction around COPY,
    which loads thousands of rows faster than arrays unnested by one statement do.
    """
    operation = operation_record(account_sid, operation_id, prepared, content, sender, now)
    if not db.is_sqlite and len(prepared.recipients) > ONE_STATEMENT_MAX:
        await _copy_send(db, account_sid, operation_id, prepared, operation, now, answer)
        return
    args = (account_sid, operation_id, prepared, operation, now)
    # Past one chunk on a thread: 10,000 rows take tens of milliseconds of CPU, which would
    # hold the event loop.
    large = len(prepared.recipients) > CHUNK
    chunks, new = await asyncio.to_thread(_rows, *args) if large else _rows(*args)
    if db.can_group:
        await db.grouped(_grouped_job(operation, chunks, new, now, answer))
    elif not db.is_sqlite:
        rows = [row for chunk in chunks for row in chunk.records()]
        await _write_send_postgresql(db, operation, rows, new, now, answer)
    else:
        async with db.write() as conn:
            await insert_send(conn, operation=operation, chunks=chunks)
            await outbox.store(conn, new.events, now, new.batches)
            if answer is not None:
                await idempotency.record_answer(conn, answer)


async def _copy_send(
    db: Database,
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    operation: tuple[Any, ...],
    now: int,
    answer: idempotency.Answer | None,
) -> None:
    """PostgreSQL past ONE_STATEMENT_MAX: a transaction around one COPY of the messages,
    each chunk made while the server ingests the one before (10,000 rows made first and
    then copied: 16 ms of making before the server starts), then the chunks' events."""
    async with db.write() as conn:
        row = dict(zip(OPERATION_COLUMNS, operation, strict=True))
        await conn.execute(insert(operations).values(row))
        records = message_records(account_sid, operation_id, prepared, now)
        chunks = await bulk.copy_stream(conn, records)
        new = accepted_events((operation[0], operation[1], operation[2]), chunks, now)
        await outbox.store(conn, new.events, now, new.batches)
        if answer is not None:
            await idempotency.record_answer(conn, answer)
        await queue.notify(conn)  # wakes PostgreSQL workers when this commits


def _rows(
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    operation: tuple[Any, ...],
    now: int,
) -> tuple[list[bulk.Shared], outbox.Accepted]:
    """The message rows in chunks, and the accept's events (written in the same transaction)."""
    chunks = list(message_records(account_sid, operation_id, prepared, now))
    return chunks, accepted_events((operation[0], operation[1], operation[2]), chunks, now)


def _grouped_job(
    operation: tuple[Any, ...],
    chunks: list[bulk.Shared],  # built before, not in the transaction
    new: outbox.Accepted,
    now: int,
    answer: idempotency.Answer | None,
) -> Callable[[sqlite3.Connection], None]:
    def job(conn: sqlite3.Connection) -> None:
        conn.execute(_SQLITE_INSERT_OPERATION, operation)
        for chunk in chunks:
            bulk.insert_shared_sync(conn, chunk)
        outbox.store_sync(conn, new.events, now, new.batches)
        if answer is not None:
            idempotency.record_sqlite(conn, answer)

    return job


def _pg_types(table: Table, columns: tuple[str, ...]) -> list[str]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return [table.c[name].type.compile(dialect=dialect) for name in columns]


def _pg_params(first: int, types: list[str], suffix: str = "") -> str:
    return ", ".join(f"${first + i}::{kind}{suffix}" for i, kind in enumerate(types))


@lru_cache(maxsize=8)
def _pg_send_sql(answered: bool, events_given: int | None = None) -> str:
    """The whole send as one statement: the operation, every message, its events, the
    wake-up of the workers and, when `answered`, the Idempotency-Key's answer (its
    parameters last). In autocommit it is atomic and costs one round trip.

    The messages and events come as one array per column, or, with `events_given`, as one
    message and that many events in plain parameters: the 1-recipient send, where encoding
    two dozen one-element arrays costs more than the rest of the statement."""
    names = len(OPERATION_COLUMNS)
    values = ", ".join(f"${i}" for i in range(1, names + 1))
    message_types = _pg_types(messages, MESSAGE_COLUMNS)
    event_types = _pg_types(events, outbox.EVENT_COLUMNS)
    if events_given is None:
        message_source = f"unnest({_pg_params(names + 1, message_types, '[]')}) AS m"
        first = names + len(MESSAGE_COLUMNS) + 1
        event_source = f"SELECT * FROM unnest({_pg_params(first, event_types, '[]')})"
        after = first + len(outbox.EVENT_COLUMNS)
    else:
        columns = ", ".join(MESSAGE_COLUMNS)
        message_source = f"(VALUES ({_pg_params(names + 1, message_types)})) AS m({columns})"
        first, width = names + len(MESSAGE_COLUMNS) + 1, len(outbox.EVENT_COLUMNS)
        rows = [f"({_pg_params(first + i * width, event_types)})" for i in range(events_given)]
        event_source = f"VALUES {', '.join(rows)}"
        after = first + events_given * width
    # The accept's events, and one pending delivery per sink subscribed to each.
    events_cte = (
        f" ev AS (INSERT INTO {events.name} ({', '.join(outbox.EVENT_COLUMNS)})"
        f" {event_source} RETURNING id, account_sid, type),"
        f" dl AS (INSERT INTO event_deliveries ({', '.join(outbox.DELIVERY_COLUMNS)})"
        f" SELECT ev.id, s.sink_sid, '{outbox.PENDING}', 0, $1_now, $1_now, $1_now FROM ev"
        " JOIN event_subscribed_types s ON s.account_sid = ev.account_sid AND s.type = ev.type),"
    ).replace("$1_now", f"${after}::bigint")
    answer = f" {idempotency.pg_record_cte(after + 1)}," if answered else ""
    return (
        f"WITH op AS (INSERT INTO {operations.name} ({', '.join(OPERATION_COLUMNS)})"
        f" VALUES ({values})),{events_cte}{answer}"
        f" wake AS (SELECT pg_notify('{queue.NOTIFY_CHANNEL}', ''))"
        f" INSERT INTO {messages.name} ({', '.join(MESSAGE_COLUMNS)})"
        f" SELECT m.* FROM {message_source} CROSS JOIN wake"
        # The guard's value must be used, or the planner drops the division unevaluated.
        + (" CROSS JOIN answer_guard WHERE answer_guard.recorded = 1" if answered else "")
    )


async def _write_send_postgresql(
    db: Database,
    operation: tuple[Any, ...],
    rows: list[tuple[Any, ...]],
    new: outbox.Accepted,
    now: int,
    answer: idempotency.Answer | None,
) -> None:
    # Templates are for chunks past ONE_STATEMENT_MAX messages: none here.
    assert not new.batches
    event_rows = outbox.event_records(new.events, now)
    if len(rows) == 1 and event_rows:
        sql = _pg_send_sql(answer is not None, len(event_rows))
        given = [*rows[0], *(value for row in event_rows for value in row)]
    else:
        sql = _pg_send_sql(answer is not None)
        columns = [list(column) for column in zip(*rows, strict=True)]
        event_columns = [list(c) for c in zip(*event_rows, strict=True)] if event_rows else []
        given = [*columns, *(event_columns or [[] for _ in outbox.EVENT_COLUMNS])]
    extra = () if answer is None else answer.params()
    from asyncpg import DivisionByZeroError  # loaded with the PostgreSQL dialect already

    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        try:
            await driver.execute(sql, *operation, *given, now, *extra)
        except DivisionByZeroError as error:
            if answer is None:
                raise
            raise idempotency.KeyTakenOver(answer.key) from error  # answer_guard: nothing written
        except BaseException:
            # Past SQLAlchemy, nothing notices a connection the error broke: drop it rather
            # than hand it to the next request.
            await conn.invalidate()
            raise


async def insert_send(
    conn: AsyncConnection,
    *,
    operation: tuple[Any, ...],
    chunks: Sequence[bulk.Shared],
) -> None:
    """Writes the operation and every message; the caller's transaction makes it atomic."""
    row = dict(zip(OPERATION_COLUMNS, operation, strict=True))
    await conn.execute(insert(operations).values(row))
    await insert_chunks(conn, chunks)
    await queue.notify(conn)  # wakes PostgreSQL workers when this commits
