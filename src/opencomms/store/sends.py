"""Writing a send: one operation row and all its message rows in one transaction."""

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.domain import errors
from opencomms.domain.send import PreparedSend
from opencomms.domain.status import MessageStatus, OperationStatus
from opencomms.store.codec import dumps
from opencomms.store.tables import messages, operations


def _message_status(send_at: int | None, unaddressable: bool) -> str:
    if unaddressable:
        return MessageStatus.FAILED
    return MessageStatus.SCHEDULED if send_at is not None else MessageStatus.QUEUED


def operation_status(prepared: PreparedSend) -> str:
    if all(m.unaddressable for m in prepared.messages):
        return OperationStatus.COMPLETED
    return OperationStatus.SCHEDULED if prepared.send_at_ms else OperationStatus.PROCESSING


def message_rows(
    account_sid: str,
    operation_id: str,
    prepared: PreparedSend,
    recipients: list[dict[str, Any]],
    now: int,
) -> list[dict[str, Any]]:
    message_ids = ids.ulids(len(prepared.messages))
    rows = []
    for position, message in enumerate(prepared.messages):
        route = message.first_route
        recipient = message.recipient
        rows.append(
            {
                "id": ids.MESSAGE_PREFIX + message_ids[position],
                "account_sid": account_sid,
                "operation_id": operation_id,
                "position": position,
                "status": _message_status(message.send_at_ms, route is None),
                "recipient": dumps(recipients[position]),
                "variables": dumps(recipient.variables) if recipient.variables else None,
                "profile_id": recipient.profile_id,
                "tags": dumps(message.tags),
                "send_at": message.send_at_ms,
                "unaddressable": route is None,
                "channel": message.sender.channel,
                "sender": dumps(message.sender.as_json()),
                "content": None,
                "error_code": errors.NO_ROUTE if route is None else None,
                "error_message": "No sender and channel can reach this recipient"
                if route is None
                else None,
                "next_attempt_at": None if route is None else (message.send_at_ms or now),
                "attempt_count": 0,
                "lease_token": 0,
                "lease_owner": None,
                "lease_expires_at": None,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            }
        )
    return rows


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
    rows = message_rows(account_sid, operation_id, prepared, recipients, now)
    await conn.execute(insert(messages), rows)
