"""Reading one message with everything a caller shows about it."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain.errors import NotFound
from opencomms.domain.records import AttemptRecord, MessageRecord
from opencomms.domain.send import render_content
from opencomms.store import reads


@dataclass(frozen=True, slots=True)
class MessageDetail:
    record: MessageRecord
    content: dict[str, Any]  # rendered for its recipient
    attempts: list[AttemptRecord]


async def message_detail(conn: AsyncConnection, account_sid: str, message_id: str) -> MessageDetail:
    """The message with its content resolved and its attempts; NotFound across accounts."""
    record = await reads.get_message(conn, account_sid, message_id)
    if record is None:
        raise NotFound(f"Message {message_id}")
    content = record.content
    if content is None:
        # Not dispatched yet: render the operation's content for this recipient.
        operation = await reads.get_operation(conn, account_sid, record.operation_id)
        if operation is None:
            raise NotFound(f"Message {message_id}")
        content = render_content(operation.content, record.variables)
    return MessageDetail(record, content, await reads.list_attempts(conn, message_id))
