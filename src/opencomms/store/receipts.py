"""Delivery receipts in the store: the attempts they are about, the status moves they make,
and the receipts that came before their attempt was known (kept until it is)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.transitions import StatusChanges
from opencomms.store.codec import loads
from opencomms.store.queue import RETURNING_CONTEXT, Move, write_returning
from opencomms.store.tables import attempts, messages, receipts


@dataclass(frozen=True, slots=True)
class LatestAttempt:
    message_id: str
    number: int
    channel: str
    route: str | None  # the configured route that carried it (None before migration 0003)
    recipient: list[dict[str, str]]
    status: str
    attempted_at: int
    external_id: str | None


async def latest_attempts(conn: AsyncConnection, message_ids: list[str]) -> list[LatestAttempt]:
    """Each message's current attempt (the one its status reflects)."""
    query = (
        select(attempts)
        .join(messages, messages.c.id == attempts.c.message_id)
        .where(
            attempts.c.message_id.in_(message_ids), attempts.c.number == messages.c.attempt_count
        )
    )
    return [
        LatestAttempt(
            r.message_id,
            r.number,
            r.channel,
            r.route,
            loads(r.recipient),
            r.status,
            r.attempted_at,
            r.external_id,
        )
        for r in await conn.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    external_id: str
    status: str
    error_code: int | None
    error_message: str | None
    final: bool


@dataclass(frozen=True, slots=True)
class ReceiptTarget:
    """The attempt a receipt is about, and the message it belongs to."""

    external_id: str
    message_id: str
    operation_id: str
    number: int
    attempt_status: str
    is_current: bool  # the message's latest attempt: only then does it move the message
    message_status: str


async def receipt_targets(
    conn: AsyncConnection, external_ids: Iterable[str]
) -> dict[str, ReceiptTarget]:
    query = (
        select(
            attempts.c.external_id,
            attempts.c.message_id,
            attempts.c.operation_id,
            attempts.c.number,
            attempts.c.status,
            messages.c.attempt_count,
            messages.c.status.label("message_status"),
        )
        .join(messages, messages.c.id == attempts.c.message_id)
        .where(attempts.c.external_id.in_(list(external_ids)))
    )
    return {
        r.external_id: ReceiptTarget(
            r.external_id,
            r.message_id,
            r.operation_id,
            r.number,
            r.status,
            r.number == r.attempt_count,
            r.message_status,
        )
        for r in await conn.execute(query)
    }


@dataclass(frozen=True, slots=True)
class ReceiptWrite:
    """A receipt applied to a message not leased by the writer: guarded by status instead."""

    id: str
    expect: str
    status: str
    error_code: int | None
    error_message: str | None
    next_at: int | None
    via: tuple[str, ...] = ()  # statuses passed on the way (DELIVERED before READ)

    def move(self) -> Move:
        return Move(self.expect, self.status, self.error_code, self.error_message, self.via)


async def write_receipt_statuses(
    conn: AsyncConnection,
    rows: Sequence[ReceiptWrite],
    now: int,
    changes: StatusChanges,
    downstream: Mapping[str, str | None] | None = None,
) -> set[str]:
    """Moves messages forward on receipts; a message whose status changed meanwhile is left
    alone (status only moves forward, and whoever changed it got there first). Returns the
    ids moved and adds their transitions to `changes`."""
    sql = (
        "UPDATE messages SET status = v.status, error_code = v.error_code,"
        " error_message = v.error_message, next_attempt_at = v.next_at,"
        " lease_owner = NULL, lease_expires_at = NULL, updated_at = :now"
        " FROM {rows} WHERE messages.id = v.id AND messages.status = v.expect"
    )
    columns = (
        ("id", "text"),
        ("expect", "text"),
        ("status", "text"),
        ("error_code", "int"),
        ("error_message", "text"),
        ("next_at", "int"),
    )
    moves = {r.id: r.move() for r in rows}
    return await write_returning(
        conn, sql + RETURNING_CONTEXT, columns, rows, moves, changes, downstream, now=now
    )


async def keep_unmatched(conn: AsyncConnection, rows: Sequence[ReceiptRow], now: int) -> None:
    if rows:
        await conn.execute(insert(receipts), [{**asdict(r), "received_at": now} for r in rows])


async def take_unmatched(conn: AsyncConnection, external_ids: Iterable[str]) -> list[ReceiptRow]:
    """Removes and returns the waiting receipts for these ids, oldest first."""
    ids = list(external_ids)
    if not ids:
        return []
    stmt = (
        delete(receipts)
        .where(receipts.c.external_id.in_(ids))
        .returning(
            receipts.c.id,
            receipts.c.external_id,
            receipts.c.status,
            receipts.c.error_code,
            receipts.c.error_message,
            receipts.c.final,
        )
    )
    found = sorted(await conn.execute(stmt), key=lambda r: r.id)
    return [
        ReceiptRow(r.external_id, r.status, r.error_code, r.error_message, bool(r.final))
        for r in found
    ]


async def prune_unmatched(conn: AsyncConnection, older_than: int) -> int:
    """Drops receipts whose attempt never showed up (its send result was lost)."""
    result = await conn.execute(delete(receipts).where(receipts.c.received_at < older_than))
    return int(result.rowcount)
