"""Sinks and subscriptions: the rows behind the Event Streams API and the CLI."""

import base64
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain import errors
from opencomms.domain.errors import Problem, ValidationFailed
from opencomms.events import envelope, outbox, types
from opencomms.store.accounts import SecretBox
from opencomms.store.codec import dumps, loads
from opencomms.store.tables import (
    event_deliveries,
    event_sinks,
    event_subscribed_types,
    event_subscriptions,
    events,
)

INITIALIZED, VALIDATING, ACTIVE, FAILED = "initialized", "validating", "active", "failed"
SINK_TYPES = ("kinesis", "webhook", "segment", "email")
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True, slots=True)
class Sink:
    sid: str
    account_sid: str
    description: str
    sink_type: str
    configuration: dict[str, Any]
    status: str
    test_event_id: str | None
    last_success_at: int | None
    last_failure_at: int | None
    last_failure_reason: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Subscription:
    sid: str
    account_sid: str
    sink_sid: str
    description: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class SubscribedType:
    subscription_sid: str
    account_sid: str
    type: str
    schema_version: int


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _problem(message: str, field: str) -> ValidationFailed:
    return ValidationFailed([Problem(errors.INVALID_PARAMETER, message, f"$.{field}")])


def webhook_configuration(raw: Any) -> dict[str, Any]:
    """The SinkConfiguration of a webhook sink, checked: destination, method, batch_events."""
    field = "SinkConfiguration"
    if not isinstance(raw, dict):
        raise _problem("SinkConfiguration must be a JSON object", field)
    unknown = sorted(set(raw) - {"destination", "method", "batch_events"})
    if unknown:
        raise _problem(f"SinkConfiguration has unknown keys: {', '.join(unknown)}", field)
    destination = raw.get("destination")
    parts = urlsplit(destination) if isinstance(destination, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _problem("destination must be an http(s) URL", f"{field}.destination")
    method = str(raw.get("method", "POST")).upper()
    if method != "POST":
        raise _problem("method must be POST: events are JSON bodies", f"{field}.method")
    batch = raw.get("batch_events", False)
    if isinstance(batch, str) and batch.lower() in ("true", "false"):
        batch = batch.lower() == "true"
    if not isinstance(batch, bool):
        raise _problem("batch_events must be true or false", f"{field}.batch_events")
    return {"destination": destination, "method": method, "batch_events": batch}


def _sink(row: Any) -> Sink:
    return Sink(
        sid=row.sid,
        account_sid=row.account_sid,
        description=row.description,
        sink_type=row.sink_type,
        configuration=loads(row.configuration),
        status=row.status,
        test_event_id=row.test_event_id,
        last_success_at=row.last_success_at,
        last_failure_at=row.last_failure_at,
        last_failure_reason=row.last_failure_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def create_sink(
    conn: AsyncConnection,
    box: SecretBox,
    *,
    account_sid: str,
    description: str,
    sink_type: str,
    configuration: dict[str, Any],
    now: int,
    status: str = INITIALIZED,
) -> tuple[Sink, str]:
    """A new sink and its signing secret (returned once, stored sealed)."""
    sid = "DG" + secrets.token_hex(16)
    secret = new_secret()
    await conn.execute(
        event_sinks.insert().values(
            sid=sid,
            account_sid=account_sid,
            description=description,
            sink_type=sink_type,
            configuration=dumps(configuration),
            status=status,
            secrets=box.seal(dumps([{"secret": secret, "expires_at": None}])),
            lease_token=0,
            blocked_until=0,
            created_at=now,
            updated_at=now,
        )
    )
    sink = await get_sink(conn, account_sid, sid)
    assert sink is not None
    return sink, secret


async def get_sink(conn: AsyncConnection, account_sid: str, sid: str) -> Sink | None:
    query = select(event_sinks).where(
        event_sinks.c.sid == sid, event_sinks.c.account_sid == account_sid
    )
    row = (await conn.execute(query)).first()
    return _sink(row) if row is not None else None


async def list_sinks(
    conn: AsyncConnection,
    account_sid: str,
    *,
    in_use: bool | None,
    status: str | None,
    offset: int,
    limit: int,
) -> list[Sink]:
    query = select(event_sinks).where(event_sinks.c.account_sid == account_sid)
    if status is not None:
        query = query.where(event_sinks.c.status == status)
    if in_use is not None:
        used = exists().where(event_subscriptions.c.sink_sid == event_sinks.c.sid)
        query = query.where(used if in_use else ~used)
    query = query.order_by(event_sinks.c.created_at, event_sinks.c.sid)
    rows = await conn.execute(query.offset(offset).limit(limit))
    return [_sink(r) for r in rows]


async def update_sink(conn: AsyncConnection, sink: Sink, description: str, now: int) -> None:
    await conn.execute(
        update(event_sinks)
        .where(event_sinks.c.sid == sink.sid)
        .values(description=description, updated_at=now)
    )


async def delete_sink(conn: AsyncConnection, sink: Sink) -> None:
    """The sink, its subscriptions and what it still owed."""
    subs = select(event_subscriptions.c.sid).where(event_subscriptions.c.sink_sid == sink.sid)
    await conn.execute(
        delete(event_subscribed_types).where(
            event_subscribed_types.c.subscription_sid.in_(subs.scalar_subquery())
        )
    )
    await conn.execute(
        delete(event_subscriptions).where(event_subscriptions.c.sink_sid == sink.sid)
    )
    await conn.execute(delete(event_deliveries).where(event_deliveries.c.sink_sid == sink.sid))
    await conn.execute(delete(event_sinks).where(event_sinks.c.sid == sink.sid))


async def start_test(conn: AsyncConnection, sink: Sink, now: int) -> str:
    """Queues a test event for the sink alone; Validate then expects its id."""
    event_id = outbox.new_event_ids(1)[0]
    payload = envelope.test_event(event_id, sink.sid, now)
    await conn.execute(
        events.insert().values(
            id=event_id,
            account_sid=sink.account_sid,
            type=types.TEST_EVENT,
            subject=sink.sid,
            sequence=1,
            payload=dumps(payload),
            created_at=now,
        )
    )
    await conn.execute(event_deliveries.insert().values(**outbox.pending(event_id, sink.sid, now)))
    status = sink.status if sink.status == ACTIVE else VALIDATING
    await conn.execute(
        update(event_sinks)
        .where(event_sinks.c.sid == sink.sid)
        .values(test_event_id=event_id, status=status, updated_at=now)
    )
    return event_id


async def validate(conn: AsyncConnection, sink: Sink, test_id: str, now: int) -> bool:
    """Activates the sink when `test_id` is the id of the test event it was sent."""
    if sink.test_event_id is None or not secrets.compare_digest(sink.test_event_id, test_id):
        return False
    await conn.execute(
        update(event_sinks)
        .where(event_sinks.c.sid == sink.sid)
        .values(status=ACTIVE, blocked_until=0, updated_at=now)
    )
    return True


async def signing_secrets(conn: AsyncConnection, box: SecretBox, sid: str, now: int) -> list[str]:
    """The secrets a delivery is signed with: the current one and any still in overlap."""
    sealed = (
        await conn.execute(select(event_sinks.c.secrets).where(event_sinks.c.sid == sid))
    ).scalar_one()
    return _live(loads(box.open(sealed) or "[]"), now)


def _live(entries: list[dict[str, Any]], now: int) -> list[str]:
    return [e["secret"] for e in entries if e["expires_at"] is None or e["expires_at"] > now]


async def rotate_secret(
    conn: AsyncConnection, box: SecretBox, sink: Sink, now: int, overlap_ms: int
) -> str:
    """A new signing secret; the old ones keep signing for `overlap_ms` (several signatures
    per delivery meanwhile, as Standard Webhooks allows), so receivers can switch without a
    gap."""
    sealed = (
        await conn.execute(select(event_sinks.c.secrets).where(event_sinks.c.sid == sink.sid))
    ).scalar_one()
    entries = loads(box.open(sealed) or "[]")
    kept = [{"secret": s, "expires_at": now + overlap_ms} for s in _live(entries, now)]
    secret = new_secret()
    await conn.execute(
        update(event_sinks)
        .where(event_sinks.c.sid == sink.sid)
        .values(secrets=box.seal(dumps([{"secret": secret, "expires_at": None}, *kept])))
    )
    return secret


async def waiting(conn: AsyncConnection, sink_sid: str) -> int:
    """Events the sink is still owed."""
    query = select(func.count()).where(
        event_deliveries.c.sink_sid == sink_sid, event_deliveries.c.next_attempt_at.is_not(None)
    )
    return int((await conn.execute(query)).scalar_one())


def _subscription(row: Any) -> Subscription:
    return Subscription(
        row.sid, row.account_sid, row.sink_sid, row.description, row.created_at, row.updated_at
    )


async def create_subscription(
    conn: AsyncConnection,
    *,
    account_sid: str,
    sink_sid: str,
    description: str,
    subscribed: list[tuple[str, int]],
    now: int,
) -> Subscription:
    sid = "DF" + secrets.token_hex(16)
    await conn.execute(
        event_subscriptions.insert().values(
            sid=sid,
            account_sid=account_sid,
            sink_sid=sink_sid,
            description=description,
            created_at=now,
            updated_at=now,
        )
    )
    for kind, version in subscribed:
        await put_subscribed_type(conn, sid, account_sid, sink_sid, kind, version, now)
    found = await get_subscription(conn, account_sid, sid)
    assert found is not None
    return found


async def get_subscription(
    conn: AsyncConnection, account_sid: str, sid: str
) -> Subscription | None:
    query = select(event_subscriptions).where(
        event_subscriptions.c.sid == sid, event_subscriptions.c.account_sid == account_sid
    )
    row = (await conn.execute(query)).first()
    return _subscription(row) if row is not None else None


async def list_subscriptions(
    conn: AsyncConnection, account_sid: str, *, sink_sid: str | None, offset: int, limit: int
) -> list[Subscription]:
    query = select(event_subscriptions).where(event_subscriptions.c.account_sid == account_sid)
    if sink_sid is not None:
        query = query.where(event_subscriptions.c.sink_sid == sink_sid)
    query = query.order_by(event_subscriptions.c.created_at, event_subscriptions.c.sid)
    return [_subscription(r) for r in await conn.execute(query.offset(offset).limit(limit))]


async def update_subscription(
    conn: AsyncConnection, sub: Subscription, description: str, now: int
) -> None:
    await conn.execute(
        update(event_subscriptions)
        .where(event_subscriptions.c.sid == sub.sid)
        .values(description=description, updated_at=now)
    )


async def delete_subscription(conn: AsyncConnection, sub: Subscription) -> None:
    await conn.execute(
        delete(event_subscribed_types).where(event_subscribed_types.c.subscription_sid == sub.sid)
    )
    await conn.execute(delete(event_subscriptions).where(event_subscriptions.c.sid == sub.sid))


async def put_subscribed_type(
    conn: AsyncConnection,
    subscription_sid: str,
    account_sid: str,
    sink_sid: str,
    kind: str,
    version: int,
    now: int,
) -> bool:
    """Subscribes to a type, or sets its schema version; True when it was new."""
    where = and_(
        event_subscribed_types.c.subscription_sid == subscription_sid,
        event_subscribed_types.c.type == kind,
    )
    result = await conn.execute(
        update(event_subscribed_types).where(where).values(schema_version=version)
    )
    if result.rowcount:
        return False
    await conn.execute(
        event_subscribed_types.insert().values(
            subscription_sid=subscription_sid,
            type=kind,
            account_sid=account_sid,
            sink_sid=sink_sid,
            schema_version=version,
            created_at=now,
        )
    )
    return True


async def subscribed_types(
    conn: AsyncConnection, subscription_sid: str, *, offset: int = 0, limit: int = 1000
) -> list[SubscribedType]:
    query = (
        select(event_subscribed_types)
        .where(event_subscribed_types.c.subscription_sid == subscription_sid)
        .order_by(event_subscribed_types.c.type)
        .offset(offset)
        .limit(limit)
    )
    return [
        SubscribedType(r.subscription_sid, r.account_sid, r.type, r.schema_version)
        for r in await conn.execute(query)
    ]


async def delete_subscribed_type(conn: AsyncConnection, subscription_sid: str, kind: str) -> bool:
    result = await conn.execute(
        delete(event_subscribed_types).where(
            event_subscribed_types.c.subscription_sid == subscription_sid,
            event_subscribed_types.c.type == kind,
        )
    )
    return bool(result.rowcount)
