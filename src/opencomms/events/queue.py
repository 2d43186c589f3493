"""Delivery state in the database: sink leases, due deliveries, fenced results, replay.

One worker delivers to a sink at a time: it leases the sink (a fencing token, as the message
queue does), reads the sink's due deliveries, posts them, and records the results only while
its token still stands. A worker that dies leaves its deliveries pending; the lease expires
and another worker sends them again (at least once, same event id).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.events import envelope, outbox, types
from opencomms.events.sinks import ACTIVE, FAILED
from opencomms.store.codec import loads
from opencomms.store.tables import (
    accounts,
    event_deliveries,
    event_sinks,
    event_subscribed_types,
    event_templates,
    events,
    messages,
)

DELIVERED, DEAD, PENDING = "delivered", "dead", "pending"
_REPLAY_COLUMNS = (
    "event_id",
    "sink_sid",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class SinkLease:
    sid: str
    account_sid: str
    destination: str
    batch: bool
    active: bool  # else only its test event may go
    token: int
    auth_token_sealed: str | None
    # It failed last time: one request probes it before the backlog is sent.
    probing: bool


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    event_id: str
    attempts: int
    created_at: int
    payload: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write for one delivery after an attempt."""

    id: int
    status: str  # DELIVERED | PENDING (retry) | DEAD
    next_attempt_at: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class SinkState:
    """The sink's own state after a round."""

    succeeded: bool
    failed_reason: str | None
    blocked_until: int
    disable: bool  # a 410: the receiver asked never to be called again


def _due_exists(now: int) -> Any:
    """The sink owes something now: anything when active, else its test event (a sink being
    validated keeps its backlog until it is active again)."""
    due = and_(
        event_deliveries.c.sink_sid == event_sinks.c.sid,
        event_deliveries.c.next_attempt_at <= now,
    )
    test_due = exists().where(
        due, events.c.id == event_deliveries.c.event_id, events.c.type == types.TEST_EVENT
    )
    return or_(and_(event_sinks.c.status == ACTIVE, exists().where(due)), test_due)


def _leasable(now: int, serving: set[str] | None) -> Any:
    condition = and_(
        event_sinks.c.status != FAILED,
        event_sinks.c.blocked_until <= now,
        or_(event_sinks.c.lease_expires_at.is_(None), event_sinks.c.lease_expires_at <= now),
        _due_exists(now),
    )
    if serving:
        condition = and_(condition, event_sinks.c.sid.not_in(sorted(serving)))
    return condition


async def any_leasable(conn: AsyncConnection, now: int, serving: set[str] | None) -> bool:
    """A read-only look first: an idle worker polls without taking SQLite's write lock."""
    query = select(event_sinks.c.sid).where(_leasable(now, serving)).limit(1)
    return (await conn.execute(query)).first() is not None


async def lease_sinks(
    conn: AsyncConnection,
    *,
    owner: str,
    now: int,
    lease_ms: int,
    limit: int,
    serving: set[str] | None = None,
) -> list[SinkLease]:
    """Leases up to `limit` sinks that have deliveries due and are not backing off, other
    than those this worker is `serving` already."""
    pick = (
        select(event_sinks.c.sid)
        .where(_leasable(now, serving))
        .order_by(event_sinks.c.blocked_until)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(event_sinks)
        .where(event_sinks.c.sid.in_(pick.scalar_subquery()))
        .values(
            lease_token=event_sinks.c.lease_token + 1,
            lease_owner=owner,
            lease_expires_at=now + lease_ms,
        )
        .returning(
            event_sinks.c.sid,
            event_sinks.c.account_sid,
            event_sinks.c.configuration,
            event_sinks.c.status,
            event_sinks.c.lease_token,
            event_sinks.c.last_success_at,
            event_sinks.c.last_failure_at,
        )
    )
    leased = (await conn.execute(stmt)).all()
    if not leased:
        return []
    tokens = dict(
        (
            await conn.execute(
                select(accounts.c.sid, accounts.c.auth_token_enc).where(
                    accounts.c.sid.in_({row[1] for row in leased})
                )
            )
        ).all()
    )
    result = []
    for sid, account, configuration, status, token, succeeded, failed in leased:
        config = loads(configuration)
        result.append(
            SinkLease(
                sid,
                account,
                config["destination"],
                bool(config.get("batch_events")),
                status == ACTIVE,
                token,
                tokens.get(account),
                failed is not None and (succeeded is None or failed > succeeded),
            )
        )
    return result


async def due(conn: AsyncConnection, lease: SinkLease, *, now: int, limit: int) -> list[Due]:
    """The sink's oldest due deliveries with their payloads (a templated event's filled in
    from its template and its message's recipient: outbox.EventBatch)."""
    query = (
        select(
            event_deliveries.c.id,
            event_deliveries.c.event_id,
            event_deliveries.c.attempts,
            event_deliveries.c.created_at,
            events.c.payload,
            events.c.subject,
            events.c.template_id,
        )
        .join(events, events.c.id == event_deliveries.c.event_id)
        .where(
            event_deliveries.c.sink_sid == lease.sid,
            event_deliveries.c.next_attempt_at <= now,
        )
        .order_by(event_deliveries.c.next_attempt_at, event_deliveries.c.id)
        .limit(limit)
    )
    if not lease.active:
        query = query.where(events.c.type == types.TEST_EVENT)
    rows = (await conn.execute(query)).all()
    templated = [row for row in rows if row.template_id is not None]
    if not templated:
        return [Due(*row[:5]) for row in rows]
    # Looked up by key apart from the page: joined into it, a planner without fresh
    # statistics may scan the messages table for every page.
    templates = await _templates(conn, {r.template_id for r in templated})
    recipients = await _recipients(conn, {r.subject for r in templated})
    found = []
    for row in rows:
        payload = row.payload
        if row.template_id is not None:
            text, channel = templates[row.template_id]
            to = recipients.get(row.subject)
            payload = envelope.fill(text, row.event_id, row.subject, to, channel)
        found.append(Due(row.id, row.event_id, row.attempts, row.created_at, payload))
    return found


async def _templates(conn: AsyncConnection, ids: set[str]) -> dict[str, tuple[str, str | None]]:
    """Template id -> (text, channel)."""
    query = select(event_templates.c.id, event_templates.c.text, event_templates.c.channel)
    rows = await conn.execute(query.where(event_templates.c.id.in_(sorted(ids))))
    return {id_: (text, channel) for id_, text, channel in rows}


async def _recipients(conn: AsyncConnection, ids: set[str]) -> dict[str, str]:
    """Message id -> its recipient (JSON)."""
    query = select(messages.c.id, messages.c.recipient).where(messages.c.id.in_(sorted(ids)))
    return {id_: recipient for id_, recipient in await conn.execute(query)}


async def record(
    conn: AsyncConnection,
    lease: SinkLease,
    outcomes: Sequence[Outcome],
    state: SinkState,
    *,
    now: int,
    lease_ms: int,
    expire_before: int,
) -> bool:
    """Writes a round's results if the lease still stands (and renews it); False when
    another worker took the sink over, in which case nothing is written. After a failure,
    deliveries created before `expire_before` are given up: a probing sink does not try
    each of them to find out."""
    values: dict[str, Any] = {"lease_expires_at": now + lease_ms, "updated_at": now}
    if state.succeeded:
        values["last_success_at"] = now
    if state.failed_reason is not None:
        values.update(last_failure_at=now, last_failure_reason=state.failed_reason)
    values["blocked_until"] = state.blocked_until
    if state.disable:
        values["status"] = FAILED
    fenced = await conn.execute(
        update(event_sinks)
        .where(event_sinks.c.sid == lease.sid, event_sinks.c.lease_token == lease.token)
        .values(**values)
    )
    if not fenced.rowcount:
        return False
    groups: dict[tuple[str, int | None, str | None], list[int]] = {}
    for o in outcomes:
        groups.setdefault((o.status, o.next_attempt_at, o.error), []).append(o.id)
    for (status, next_at, error), ids in groups.items():
        await conn.execute(
            update(event_deliveries)
            .where(event_deliveries.c.id.in_(ids))
            .values(
                status=status,
                next_attempt_at=next_at,
                last_error=error,
                attempts=event_deliveries.c.attempts + 1,
                updated_at=now,
            )
        )
    if state.failed_reason is not None:
        await conn.execute(
            update(event_deliveries)
            .where(
                event_deliveries.c.sink_sid == lease.sid,
                event_deliveries.c.next_attempt_at.is_not(None),
                event_deliveries.c.created_at < expire_before,
            )
            .values(status=DEAD, next_attempt_at=None, updated_at=now)
        )
    return True


async def renew(conn: AsyncConnection, lease: SinkLease, now: int, lease_ms: int) -> bool:
    """Extends the lease if it still stands."""
    renewed = await conn.execute(
        update(event_sinks)
        .where(event_sinks.c.sid == lease.sid, event_sinks.c.lease_token == lease.token)
        .values(lease_expires_at=now + lease_ms)
    )
    return bool(renewed.rowcount)


async def release(conn: AsyncConnection, lease: SinkLease) -> None:
    await conn.execute(
        update(event_sinks)
        .where(event_sinks.c.sid == lease.sid, event_sinks.c.lease_token == lease.token)
        .values(lease_owner=None, lease_expires_at=None)
    )


async def replay(
    conn: AsyncConnection, sink_sid: str, account_sid: str, since: int, now: int
) -> int:
    """Delivers again every stored event since `since` of a type the sink subscribes to,
    delivered before or not: same ids, so receivers can tell a replay from news. Events an
    accept left implied in their template are written out first (outbox.realize)."""
    subscribed = select(event_subscribed_types.c.type).where(
        event_subscribed_types.c.sink_sid == sink_sid
    )
    await outbox.realize(conn, account_sid, since, list((await conn.execute(subscribed)).scalars()))
    wanted = select(events.c.id).where(
        events.c.account_sid == account_sid,
        events.c.created_at >= since,
        events.c.type.in_(subscribed),
    )
    reset = await conn.execute(
        update(event_deliveries)
        .where(
            event_deliveries.c.sink_sid == sink_sid,
            event_deliveries.c.event_id.in_(wanted.scalar_subquery()),
        )
        .values(
            status=PENDING,
            next_attempt_at=now,
            attempts=0,
            last_error=None,
            created_at=now,  # a replay gets a full retry period of its own
            updated_at=now,
        )
    )
    missing = wanted.add_columns(
        literal(sink_sid),
        literal(PENDING),
        literal(0),
        literal(now),
        literal(now),
        literal(now),
    ).where(
        ~exists().where(
            and_(
                event_deliveries.c.event_id == events.c.id,
                event_deliveries.c.sink_sid == sink_sid,
            )
        )
    )
    inserted = await conn.execute(
        event_deliveries.insert().from_select(
            [
                "event_id",
                "sink_sid",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
                "updated_at",
            ],
            missing,
        )
    )
    await conn.execute(
        update(event_sinks).where(event_sinks.c.sid == sink_sid).values(blocked_until=0)
    )
    return int(reset.rowcount or 0) + int(inserted.rowcount or 0)
