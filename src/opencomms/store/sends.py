"""Writing a send: one operation row and all its message rows in one transaction."""

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.domain import errors
from opencomms.domain.routing import Sender
from opencomms.domain.send import PreparedSend
from opencomms.domain.status import MessageStatus, OperationStatus
from opencomms.store.codec import dumps
from opencomms.store.tables import messages, operations

_NO_ROUTE = "No sender and channel can reach this recipient"


class _MemoJson:
    """Serializes values shared by many rows (the same tags dict, the same sender) once."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[object, str]] = {}

    def __call__(self, value: dict[str, str] | Sender) -> str:
        cached = self._done.get(id(value))
        if cached is None:
            data = value.as_json() if isinstance(value, Sender) else value
            # Keep the object alive beside its text so its id cannot be reused meanwhile.
            cached = self._done[id(value)] = (value, dumps(data))
        return cached[1]


def _message_status(send_at: int | None, unaddressable: bool) -> str:
    if unaddressable:
        return MessageStatus.FAILED
    return MessageStatus.SCHEDULED if send_at is not None else MessageStatus.QUEUED


def operation_status(prepared: PreparedSend) -> str:
    if all(m.unaddressable for m in prepared.messages):
        return OperationStatus.COMPLETED
    return OperationStatus.SCHEDULED if prepared.send_at_ms else OperationStatus.PROCESSING


# Columns written at accept time, in the order of `message_records`; the rest of the
# table takes its server defaults.
MESSAGE_COLUMNS = (
    "id", "account_sid", "operation_id", "position", "status", "recipient", "variables",
    "profile_id", "tags", "send_at", "unaddressable", "channel", "sender", "error_code",
    "error_message", "next_attempt_at", "attempt_count", "lease_token", "created_at",
    "updated_at",
)  # fmt: skip


def message_records(
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    recipients: list[dict[str, Any]],
    now: int,
) -> list[tuple[Any, ...]]:
    """One tuple per message, in MESSAGE_COLUMNS order (tuples: 10,000 dicts cost more)."""
    message_ids = ids.ulids(len(prepared.messages))
    as_json = _MemoJson()
    records = []
    for position, message in enumerate(prepared.messages):
        unaddressable = message.unaddressable
        variables = message.recipient.variables
        records.append(
            (
                ids.MESSAGE_PREFIX + message_ids[position],
                account_sid,
                operation_id,
                position,
                _message_status(message.send_at_ms, unaddressable),
                dumps(recipients[position]),
                dumps(variables) if variables else None,
                message.recipient.profile_id,
                as_json(message.tags),
                message.send_at_ms,
                unaddressable,
                message.sender.channel,
                as_json(message.sender),
                errors.NO_ROUTE if unaddressable else None,
                _NO_ROUTE if unaddressable else None,
                None if unaddressable else (message.send_at_ms or now),
                0,
                0,
                now,
                now,
            )
        )
    return records


async def _bulk_insert(conn: AsyncConnection, records: list[tuple[Any, ...]]) -> None:
    """One set-based insert through the driver itself: COPY on PostgreSQL, one prepared
    executemany on SQLite. SQLAlchemy's per-row parameter handling costs more than the
    insert itself for 10,000 rows."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        await driver.copy_records_to_table(
            messages.name, records=records, columns=list(MESSAGE_COLUMNS)
        )
        return
    marks = ", ".join("?" for _ in MESSAGE_COLUMNS)
    sql = f"INSERT INTO {messages.name} ({', '.join(MESSAGE_COLUMNS)}) VALUES ({marks})"
    await driver.executemany(sql, records)


async def insert_send(
    conn: AsyncConnection,
    *,
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    content: dict[str, Any],
    sender: dict[str, Any] | None,
    recipients: list[dict[str, Any]],
    now: int,
) -> None:
    """Writes the operation and every message; the caller's transaction makes it atomic."""
    await conn.execute(
        insert(operations).values(
            id=operation_id,
            account_sid=account_sid,
            status=operation_status(prepared),
            content=dumps(content),
            sender=dumps(sender) if sender is not None else None,
            send_at=prepared.send_at_ms,
            created_at=now,
            updated_at=now,
        )
    )
    records = message_records(account_sid, operation_id, prepared, recipients, now)
    await _bulk_insert(conn, records)
