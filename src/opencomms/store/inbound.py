"""Storing a message a phone sent to one of an account's senders.

The one way an INBOUND message enters the store, whichever channel received it (the
sandbox's reply endpoint today, an SMSC's deliver_sm later): the message row, threaded into
its session, and the opt-out or opt-in its text asks for, in the caller's transaction.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.domain import sessions
from opencomms.domain.channels import AddressChannel, ChannelType
from opencomms.domain.records import MessageRecord
from opencomms.domain.senders import SenderRecord, SenderStatus
from opencomms.domain.sessions import INBOUND
from opencomms.domain.transitions import MessageTransition, StatusChanges
from opencomms.store import changes as status_changes
from opencomms.store import opt_outs
from opencomms.store.codec import dumps
from opencomms.store.senders import record_of
from opencomms.store.tables import messages, senders

# Inbound messages belong to no operation; the column is NOT NULL, so they hold this.
NO_OPERATION = ""


# The address channel a reply over each sender channel comes from.
REMOTE_CHANNEL = {
    ChannelType.SMS: AddressChannel.PHONE,
    ChannelType.RCS: AddressChannel.PHONE,
    ChannelType.WHATSAPP: AddressChannel.WHATSAPP,
    ChannelType.EMAIL: AddressChannel.EMAIL,
}


async def owner_of(conn: AsyncConnection, channel: str, address: str) -> SenderRecord | None:
    """The active sender a message arriving on a route was written to, if any (a route
    knows only the address it reached)."""
    query = select(senders).where(
        senders.c.channel == channel,
        senders.c.address == address,
        senders.c.status == SenderStatus.ACTIVATED.value,
    )
    row = (await conn.execute(query.order_by(senders.c.id).limit(1))).first()
    return record_of(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message received from `remote` (an address and its PHONE or WHATSAPP channel)."""

    sender: SenderRecord
    remote_address: str
    remote_channel: str
    content: dict[str, Any]


async def receive(conn: AsyncConnection, inbound: Inbound, now: int) -> MessageRecord:
    """Stores the message as INBOUND and applies a STOP/START keyword; returns the record."""
    sender = inbound.sender
    message_id = ids.MESSAGE_PREFIX + ids.ulid(now)
    session = sessions.session_id(
        sender.account_sid, sender.channel.value, sender.address, inbound.remote_address
    )
    to = {"address": sender.address, "channel": sender.channel.value, "senderId": sender.id}
    remote = {"address": inbound.remote_address, "channel": inbound.remote_channel}
    await conn.execute(
        messages.insert().values(
            id=message_id,
            account_sid=sender.account_sid,
            operation_id=NO_OPERATION,
            position=0,
            status=INBOUND,
            recipient=dumps(to),
            tags="{}",
            unaddressable=False,
            channel=sender.channel.value,
            sender=dumps(remote),
            content=dumps(inbound.content),
            attempt_count=0,
            route_index=0,
            lease_token=0,
            created_at=now,
            updated_at=now,
            session_id=session,
        )
    )
    received = MessageTransition(
        message_id,
        NO_OPERATION,
        sender.account_sid,
        None,
        INBOUND,
        channel=sender.channel.value,
        sender=remote,
        recipient=to,
        content=inbound.content,
    )
    await status_changes.settle(conn, StatusChanges([received]), now)  # inbound-received
    change = sessions.keyword(str(inbound.content.get("text", "")))
    if change is not None:
        consent, word = change
        await opt_outs.record(
            conn, sender.account_sid, sender.address, inbound.remote_address, consent, word, now
        )
    return MessageRecord(
        id=message_id,
        operation_id=NO_OPERATION,
        status=INBOUND,
        recipient=to,
        variables={},
        tags={},
        send_at=None,
        unaddressable=False,
        channel=sender.channel.value,
        sender=remote,
        content=inbound.content,
        error_code=None,
        error_message=None,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        session_id=session,
    )
