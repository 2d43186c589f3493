"""Inbound messages: what recipients send to our senders, stored as messages in status
INBOUND (no operation, no attempts, never claimed). Written by dispatch for channels'
inbound sinks, and by anything else that receives messages (the console's sandbox phone)."""

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.domain.channels import AddressChannel, ChannelType
from opencomms.domain.senders import SenderStatus
from opencomms.domain.status import MessageStatus
from opencomms.store.codec import dumps
from opencomms.store.tables import messages, senders

# The address channel a reply over each sender channel comes from.
_FROM_CHANNEL = {
    ChannelType.SMS: AddressChannel.PHONE,
    ChannelType.RCS: AddressChannel.PHONE,
    ChannelType.WHATSAPP: AddressChannel.WHATSAPP,
    ChannelType.EMAIL: AddressChannel.EMAIL,
}


async def owner_of(conn: AsyncConnection, channel: str, address: str) -> tuple[str, str] | None:
    """(account, sender id) of the active sender a message was written to, if any."""
    query = select(senders.c.account_sid, senders.c.id).where(
        senders.c.channel == channel,
        senders.c.address == address,
        senders.c.status == SenderStatus.ACTIVATED.value,
    )
    row = (await conn.execute(query.order_by(senders.c.id).limit(1))).first()
    return (row.account_sid, row.id) if row is not None else None


async def insert_inbound(
    conn: AsyncConnection,
    *,
    account_sid: str,
    channel: str,
    sender_id: str,
    remote: str,
    local: str,
    content: dict[str, Any],
    now: int,
) -> str:
    """Stores one inbound message; returns its id. Its `from` is the remote party, its `to`
    our sender, as the spec shapes a message (`operation_id` is empty: no operation)."""
    message_id = ids.MESSAGE_PREFIX + ids.ulids(1)[0]
    remote_channel = _FROM_CHANNEL[ChannelType(channel)].value
    await conn.execute(
        insert(messages).values(
            id=message_id,
            account_sid=account_sid,
            operation_id="",
            position=0,
            status=MessageStatus.INBOUND.value,
            recipient=dumps({"address": local, "channel": channel, "senderId": sender_id}),
            tags="{}",
            unaddressable=False,
            channel=channel,
            sender=dumps({"address": remote, "channel": remote_channel}),
            content=dumps(content),
            sender_id=sender_id,
            attempt_count=0,
            lease_token=0,
            created_at=now,
            updated_at=now,
        )
    )
    return message_id
