"""The messages table as a queue: claims, leases with fencing tokens, and fenced writes.

A claim bumps `lease_token` and moves `next_attempt_at` to the lease's expiry, so an expired
lease simply makes the message due again: the claim query needs no separate "lease expired"
branch and walks one small index. Every later write of a claimed message presents the token
the claim returned; once another worker has reclaimed it (or a cancel bumped the token), the
write matches no row and changes nothing.

Bulk writes are one statement per batch whatever its size: the batch travels as a single JSON
array parameter that the database unfolds into a table (`json_each` on SQLite,
`jsonb_to_recordset` on PostgreSQL), and RETURNING tells which rows the fence let through.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.status import MessageStatus
from opencomms.domain.transitions import MessageTransition, StatusChanges
from opencomms.store.codec import dumps, loads
from opencomms.store.tables import attempt_parts, attempts, messages, operations

NOTIFY_CHANNEL = "opencomms_queue"
# Statuses with work left: sending (SCHEDULED, QUEUED) or a receipt to wait for (SENT, and
# DELIVERED while a READ may follow).
CLAIMABLE = (
    MessageStatus.SCHEDULED,
    MessageStatus.QUEUED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
)
_PG_TYPES = {"text": "text", "int": "bigint", "bool": "boolean"}


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    operation_id: str
    account_sid: str
    status: str
    recipient: dict[str, Any]
    variables: dict[str, str]
    content: str | None  # rendered content (JSON) once a first attempt rendered it
    channel: str | None  # the channel tried next (planned at accept, moved on by fallback)
    sender: str | None  # JSON
    plan: str | None  # JSON: the steps planned at accept (domain.routing.Step.as_json)
    route_index: int  # the step of `plan` tried next
    attempt_count: int
    lease_token: int
    sender_id: str | None  # the current step's sender (pacing keys on it)
    paced_at: int | None  # a pacing slot reserved by an earlier claim
    valid_from: int  # the validity period runs from the send time (scheduled) or creation
    stalled_claims: int = 0  # claims that found the lease before this one lapsed, not released
    slot: int | None = None  # the pacing slot (epoch ms) its hand-off must wait for
    tags: str = "{}"  # JSON, for the events of its status changes


async def claim(
    conn: AsyncConnection, *, owner: str, now: int, lease_ms: int, limit: int
) -> list[Claim]:
    """Leases up to `limit` due messages. Statuses stay as they are: a SCHEDULED message
    becomes QUEUED only when its hand-off starts, so claiming changes nothing visible."""
    due = messages.alias("due")
    pick = (
        select(due.c.id)
        .where(due.c.next_attempt_at <= now, due.c.status.in_(CLAIMABLE))
        .order_by(due.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        # Rows another worker is claiming right now are skipped, not waited for.
        pick = pick.with_for_update(skip_locked=True)
    expires = now + lease_ms
    stmt = (
        update(messages)
        .where(messages.c.id.in_(pick.scalar_subquery()))
        .values(
            lease_token=messages.c.lease_token + 1,
            lease_owner=owner,
            lease_expires_at=expires,
            next_attempt_at=expires,
            # A lease still owned was never released: its holder died or hung with it.
            stalled_claims=case(
                (messages.c.lease_owner.is_not(None), messages.c.stalled_claims + 1),
                else_=messages.c.stalled_claims,
            ),
        )
        .returning(
            *(
                messages.c[name]
                for name in (
                    "id",
                    "operation_id",
                    "account_sid",
                    "status",
                    "recipient",
                    "variables",
                    "content",
                    "channel",
                    "sender",
                    "plan",
                    "route_index",
                    "attempt_count",
                    "lease_token",
                    "sender_id",
                    "paced_at",
                )
            ),
            func.coalesce(messages.c.send_at, messages.c.created_at).label("valid_from"),
            messages.c.tags,
            messages.c.stalled_claims,
        )
    )
    rows = (await conn.execute(stmt)).all()  # one fetch, positional: 1,000 rows per batch
    claims = []
    for id_, op, account, status, to, variables, *rest, valid_from, tags, stalled in rows:
        content, channel, sender, plan, route_index, attempts, token, sender_id, paced = rest
        claims.append(
            Claim(
                id_,
                op,
                account,
                status,
                loads(to),
                loads(variables) or {},
                content,
                channel,
                sender,
                plan,
                route_index,
                attempts,
                token,
                sender_id,
                paced,
                valid_from,
                stalled,
                tags=tags,
            )
        )
    return claims


def _rows_source(dialect: str, columns: Sequence[tuple[str, str]]) -> str:
    """A FROM item `v` that unfolds the JSON array parameter :rows into a table."""
    if dialect == "postgresql":
        spec = ", ".join(f"{name} {_PG_TYPES[kind]}" for name, kind in columns)
        return f"jsonb_to_recordset(CAST(:rows AS jsonb)) AS v({spec})"
    picks = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name, _ in columns)
    return f"(SELECT {picks} FROM json_each(:rows)) AS v"


async def update_from(
    conn: AsyncConnection,
    sql: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Any],
    **params: Any,
) -> set[str]:
    """Runs an UPDATE ... FROM {rows} ... RETURNING id over a batch; returns the ids hit."""
    return {row[0] for row in await update_returning(conn, sql, columns, rows, **params)}


async def update_returning(
    conn: AsyncConnection,
    sql: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Any],
    **params: Any,
) -> list[Any]:
    """Runs an UPDATE ... FROM {rows} ... RETURNING ... over a batch; returns the rows."""
    if not rows:
        return []
    source = _rows_source(conn.dialect.name, columns)
    data = dumps(list(rows))  # orjson writes dataclasses as objects, natively and fast
    result = await conn.execute(text(sql.format(rows=source)), {"rows": data, **params})
    return list(result)


# What a fenced write returns about each message it moved, for its transition.
CONTEXT_COLUMNS = (
    "id", "operation_id", "account_sid", "attempt_count", "channel", "sender", "recipient", "tags",
)  # fmt: skip
RETURNING_CONTEXT = " RETURNING " + ", ".join(f"messages.{name}" for name in CONTEXT_COLUMNS)


@dataclass(frozen=True, slots=True)
class Move:
    """A status move a write asked for (the write's own row says where to and why)."""

    from_status: str
    to_status: str
    error_code: int | None = None
    error_message: str | None = None
    via: tuple[str, ...] = ()


class _Tags:
    """Parses tags JSON once per distinct text (a send's messages mostly share theirs)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, str]] = {}

    def __call__(self, raw: str | None) -> dict[str, str]:
        if not raw or raw == "{}":
            return {}
        found = self._seen.get(raw)
        if found is None:
            found = self._seen[raw] = loads(raw) or {}
        return found


def transitions(
    returned: Iterable[Any],
    moves: Mapping[str, Move],
    downstream: Mapping[str, str | None] | None = None,
) -> list[MessageTransition]:
    """The transitions of the rows a write RETURNING_CONTEXT let through."""
    tags = _Tags()
    found = []
    for id_, op, account, attempt, channel, sender, recipient, raw_tags in returned:
        move = moves[id_]
        if move.from_status == move.to_status:
            continue
        found.append(
            MessageTransition(
                id_,
                op,
                account,
                move.from_status,
                move.to_status,
                attempt,
                move.error_code,
                move.error_message,
                downstream.get(id_) if downstream else None,
                channel,
                loads(sender),
                loads(recipient),
                tags(raw_tags),
                move.via,
            )
        )
    return found


async def write_returning(
    conn: AsyncConnection,
    sql: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Any],
    moves: Mapping[str, Move],
    changes: StatusChanges,
    downstream: Mapping[str, str | None] | None = None,
    **params: Any,
) -> set[str]:
    """A fenced status write (`sql` ending in RETURNING_CONTEXT); adds the transitions of
    the messages it moved to `changes` and returns their ids."""
    returned = await update_returning(conn, sql, columns, rows, **params)
    changes.add(transitions(returned, moves, downstream))
    return {row[0] for row in returned}


@dataclass(frozen=True, slots=True)
class Handoff:
    """The fenced write before a hand-off: attempt `number` starts on this route."""

    id: str
    token: int
    number: int
    route_index: int
    channel: str
    sender: str  # JSON
    content: str  # JSON, rendered
    session_id: str  # the sender's conversation with the address (domain/sessions.py)


_HANDOFF_COLUMNS = (
    ("id", "text"),
    ("token", "int"),
    ("number", "int"),
    ("route_index", "int"),
    ("channel", "text"),
    ("sender", "text"),
    ("content", "text"),
    ("session_id", "text"),
)


async def start_handoffs(
    conn: AsyncConnection,
    rows: Sequence[Handoff],
    now: int,
    changes: StatusChanges,
    statuses: Mapping[str, str] | None = None,
) -> set[str]:
    """Records the route, rendered content and attempt count of messages about to be handed
    off, and moves SCHEDULED ones to QUEUED; returns the ids still leased and not handed off
    (a cancel or a takeover bumped the token of the rest). `statuses`: what each claim saw
    (the fence guarantees it is still so), for the transitions added to `changes`."""
    sql = (
        "UPDATE messages SET status = 'QUEUED', attempt_count = v.number,"
        " route_index = v.route_index, channel = v.channel, sender = v.sender,"
        " content = v.content, session_id = v.session_id, paced_at = NULL, updated_at = :now"
        " FROM {rows} WHERE messages.id = v.id AND messages.lease_token = v.token"
        " AND messages.status IN ('SCHEDULED', 'QUEUED')"
    )
    known = statuses or {}
    queued = MessageStatus.QUEUED.value
    moves = {r.id: Move(known.get(r.id, queued), queued) for r in rows}
    return await write_returning(
        conn, sql + RETURNING_CONTEXT, _HANDOFF_COLUMNS, rows, moves, changes, now=now
    )


@dataclass(frozen=True, slots=True)
class NewAttempt:
    message_id: str
    operation_id: str
    account_sid: str
    number: int
    channel: str
    sender: str  # JSON
    recipient: str  # JSON
    route: str
    attempted_at: int  # the hand-off time: now, or the pacing slot it waits for


_NEW_ATTEMPT_COLUMNS = (
    ("message_id", "text"),
    ("operation_id", "text"),
    ("account_sid", "text"),
    ("number", "int"),
    ("channel", "text"),
    ("sender", "text"),
    ("recipient", "text"),
    ("route", "text"),
    ("attempted_at", "int"),
)


async def insert_attempts(
    conn: AsyncConnection,
    rows: Sequence[NewAttempt],
    now: int,
    changes: StatusChanges,
) -> None:
    """Attempt rows in status QUEUED: in flight from now until the channel answers (counted
    into `changes` for the operations' attempt counters)."""
    if not rows:
        return
    for row in rows:
        changes.started(row.operation_id)
    names = ", ".join(name for name, _ in _NEW_ATTEMPT_COLUMNS)
    source = _rows_source(conn.dialect.name, _NEW_ATTEMPT_COLUMNS)
    sql = (
        f"INSERT INTO attempts ({names}, status, updated_at)"
        f" SELECT {names}, 'QUEUED', :now FROM {source}"
    )
    await conn.execute(text(sql), {"rows": dumps(list(rows)), "now": now})


async def fail_stale_attempts(
    conn: AsyncConnection, message_ids: Iterable[str], code: int, message: str, now: int
) -> int:
    """Attempts left in flight by a worker that lost its lease: their outcome is unknown."""
    ids = list(message_ids)
    if not ids:
        return 0
    result = await conn.execute(
        update(attempts)
        .where(attempts.c.message_id.in_(ids), attempts.c.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.FAILED, error_code=code, error_message=message, updated_at=now)
    )
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class MessageWrite:
    """A claimed message's next state; releases its lease."""

    id: str
    token: int
    expect: str  # the status the claim saw; anything else means someone else moved it
    status: str
    next_at: int | None
    error_code: int | None
    error_message: str | None
    route_index: int
    channel: str | None
    sender: str | None  # JSON
    sender_id: str | None = None  # set when fallback moves on to another sender
    via: tuple[str, ...] = ()  # statuses passed on the way (receipts folded in: SENT)

    def move(self) -> Move:
        return Move(self.expect, self.status, self.error_code, self.error_message, self.via)


_WRITE_COLUMNS = (
    ("id", "text"),
    ("token", "int"),
    ("expect", "text"),
    ("status", "text"),
    ("next_at", "int"),
    ("error_code", "int"),
    ("error_message", "text"),
    ("route_index", "int"),
    ("channel", "text"),
    ("sender", "text"),
    ("sender_id", "text"),
)


async def write_messages(
    conn: AsyncConnection,
    rows: Sequence[MessageWrite],
    now: int,
    changes: StatusChanges,
    downstream: Mapping[str, str | None] | None = None,
) -> set[str]:
    """Fenced status writes of claimed messages; returns the ids the fence let through and
    adds their transitions to `changes` (`downstream`: each hand-off's channel id)."""
    sql = (
        "UPDATE messages SET status = v.status, next_attempt_at = v.next_at,"
        " error_code = v.error_code, error_message = v.error_message,"
        " route_index = v.route_index, channel = v.channel, sender = v.sender,"
        " sender_id = COALESCE(v.sender_id, messages.sender_id), paced_at = NULL,"
        " lease_owner = NULL, lease_expires_at = NULL, updated_at = :now"
        " FROM {rows} WHERE messages.id = v.id AND messages.lease_token = v.token"
        # A write repeated after its commit's answer was lost finds the lease gone: a no-op.
        " AND messages.status = v.expect AND messages.lease_owner IS NOT NULL"
    )
    moves = {r.id: r.move() for r in rows}
    return await write_returning(
        conn, sql + RETURNING_CONTEXT, _WRITE_COLUMNS, rows, moves, changes, downstream, now=now
    )


@dataclass(frozen=True, slots=True)
class Reschedule:
    id: str
    token: int
    status: str  # the status the message must still have
    next_at: int | None


async def reschedule(conn: AsyncConnection, rows: Sequence[Reschedule]) -> set[str]:
    """Releases claimed messages without a visible change: only their due time moves."""
    sql = (
        "UPDATE messages SET next_attempt_at = v.next_at, lease_owner = NULL,"
        " lease_expires_at = NULL FROM {rows} WHERE messages.id = v.id"
        " AND messages.lease_token = v.token AND messages.status = v.status"
        " RETURNING messages.id"
    )
    columns = (("id", "text"), ("token", "int"), ("status", "text"), ("next_at", "int"))
    return await update_from(conn, sql, columns, rows)


@dataclass(frozen=True, slots=True)
class AttemptWrite:
    """The outcome of an attempt: matched by message and number, or by attempt id."""

    message_id: str
    number: int
    expect: str
    status: str
    external_id: str | None
    error_code: int | None
    error_message: str | None


async def write_attempts(conn: AsyncConnection, rows: Sequence[AttemptWrite], now: int) -> set[str]:
    """Moves attempts from their expected status; returns the message ids hit."""
    sql = (
        "UPDATE attempts SET status = v.status,"
        " external_id = COALESCE(v.external_id, attempts.external_id),"
        " error_code = v.error_code, error_message = v.error_message, updated_at = :now"
        " FROM {rows} WHERE attempts.message_id = v.message_id AND attempts.number = v.number"
        " AND attempts.status = v.expect RETURNING attempts.message_id"
    )
    columns = (
        ("message_id", "text"),
        ("number", "int"),
        ("expect", "text"),
        ("status", "text"),
        ("external_id", "text"),
        ("error_code", "int"),
        ("error_message", "text"),
    )
    return await update_from(conn, sql, columns, rows, now=now)


async def extend_leases(
    conn: AsyncConnection, owner: str, tokens: dict[str, int], expires: int
) -> set[str]:
    """Heartbeat: keeps the leases of a batch still being sent; returns those still held."""
    sql = (
        "UPDATE messages SET lease_expires_at = :expires, next_attempt_at = :expires"
        " FROM {rows} WHERE messages.id = v.id AND messages.lease_token = v.token"
        " AND messages.lease_owner = :owner RETURNING messages.id"
    )
    rows = [_Token(id_, token) for id_, token in tokens.items()]
    columns = (("id", "text"), ("token", "int"))
    return await update_from(conn, sql, columns, rows, owner=owner, expires=expires)


@dataclass(frozen=True, slots=True)
class _Token:
    id: str
    token: int


async def notify(conn: AsyncConnection) -> None:
    """Wakes listening workers when the transaction commits (PostgreSQL; no-op on SQLite)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))


async def load_operations(
    conn: AsyncConnection, operation_ids: Iterable[str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]]:
    """Content and `from` of each operation, as the request gave them, and its kind."""
    query = select(
        operations.c.id, operations.c.content, operations.c.sender, operations.c.kind
    ).where(operations.c.id.in_(list(operation_ids)))
    return {r.id: (loads(r.content), loads(r.sender), r.kind) for r in await conn.execute(query)}


async def insert_parts(conn: AsyncConnection, parts: Sequence[tuple[str, str]]) -> None:
    """The further ids of hand-offs (long SMS parts), each naming its attempt's own id."""
    if parts:
        await conn.execute(
            insert(attempt_parts),
            [{"external_id": part, "primary_id": primary} for part, primary in parts],
        )
