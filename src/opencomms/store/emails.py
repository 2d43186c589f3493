"""Emails in the store: rows of the messages table whose ids start `comms_email_`.

Sharing the table (and the accept-time bulk insert of store/sends.py) means dispatch,
retries, fencing, receipts, cancel, Seek and the operation stats work for emails unchanged;
an email operation is an operations row of kind EMAILS. See docs/email.md.
"""

import asyncio
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.domain.records import MessageFilter, MessageRecord, OperationKind
from opencomms.domain.send import PreparedSend
from opencomms.events import outbox
from opencomms.store import bulk, queue, reads, sends
from opencomms.store.cancel import cancel_operation
from opencomms.store.codec import dumps, loads
from opencomms.store.tables import COUNTER_COLUMNS, messages, operations


async def insert_emails(
    conn: AsyncConnection,
    *,
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    content: dict[str, Any],
    sender: dict[str, Any],
    now: int,
) -> None:
    """Writes the operation and every email; the caller's transaction makes it atomic."""
    await conn.execute(
        insert(operations).values(
            id=operation_id,
            account_sid=account_sid,
            status=sends.operation_status(prepared),
            content=dumps(content),
            sender=dumps(sender),
            send_at=prepared.send_at_ms,
            created_at=now,
            updated_at=now,
            kind=OperationKind.EMAILS,
            **dict(zip(COUNTER_COLUMNS, sends.operation_counts(prepared), strict=True)),
        )
    )
    args = (account_sid, operation_id, prepared, now)
    # Past one chunk on a thread: 10,000 rows take tens of milliseconds of CPU, which would
    # hold the event loop (as in store/sends.write_send).
    large = len(prepared.recipients) > sends.CHUNK
    chunks, new = await asyncio.to_thread(_rows, *args) if large else _rows(*args)
    await sends.insert_chunks(conn, chunks)
    await outbox.store(conn, new.events, now, new.batches)
    await queue.notify(conn)  # wakes PostgreSQL workers when this commits


def _rows(
    account_sid: str, operation_id: str, prepared: PreparedSend, now: int
) -> tuple[list[bulk.Shared], outbox.Accepted]:
    """The email rows in chunks, and the accept's events."""
    made = sends.message_records(account_sid, operation_id, prepared, now, ids.EMAIL_PREFIX)
    chunks = list(made)
    status = sends.operation_status(prepared)
    return chunks, sends.accepted_events((operation_id, account_sid, status), chunks, now)


async def list_emails(
    conn: AsyncConnection, account_sid: str, f: MessageFilter, *, before_id: str | None, limit: int
) -> list[MessageRecord]:
    return await reads.list_messages(
        conn, account_sid, f, before_id=before_id, limit=limit, prefix=ids.EMAIL_PREFIX
    )


async def get_email(conn: AsyncConnection, account_sid: str, email_id: str) -> MessageRecord | None:
    if not email_id.startswith(ids.EMAIL_PREFIX):
        return None
    return await reads.get_message(conn, account_sid, email_id)


async def senders_of(conn: AsyncConnection, operation_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The `from` each operation was sent with (its display name), by operation id."""
    if not operation_ids:
        return {}
    query = select(operations.c.id, operations.c.content).where(
        operations.c.id.in_(sorted(operation_ids))
    )
    found = {}
    for op_id, content in await conn.execute(query):
        sender = loads(content).get("from")
        found[op_id] = sender if isinstance(sender, dict) else {}
    return found


async def delete_email(conn: AsyncConnection, account_sid: str, email_id: str, now: int) -> bool:
    """Marks an email deleted; one not handed off yet is canceled first, so it never goes
    out. False when there is no such email (or it is deleted already)."""
    record = await get_email(conn, account_sid, email_id)
    if record is None:
        return False
    await cancel_operation(conn, record.operation_id, now, message_id=email_id)
    await conn.execute(
        update(messages)
        .where(messages.c.id == email_id, messages.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    return True
