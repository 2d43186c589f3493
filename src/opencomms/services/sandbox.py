"""The sandbox as a developer drives it: its inbox, and replies from its phones."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.domain import errors, phone
from opencomms.domain.channels import REACHES, AddressChannel, ChannelType
from opencomms.domain.errors import Problem, ValidationFailed
from opencomms.domain.records import MessageFilter, MessageRecord
from opencomms.domain.send import MAX_TEXT
from opencomms.domain.senders import SenderRecord
from opencomms.domain.sessions import INBOUND, bare_number, session_id
from opencomms.store import inbound, reads, senders
from opencomms.store.sandbox import (
    EMAILS,
    Delivery,
    SandboxFilter,
    clear,
    list_deliveries,
)

__all__ = [
    "EMAILS",
    "Delivery",
    "Reply",
    "SandboxFilter",
    "ThreadItem",
    "ThreadSummary",
    "clear",
    "list_deliveries",
    "reply",
    "sender_addresses",
    "thread",
    "threads",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """A phone (`from_address` on `from_channel`) writing to a sender of the account."""

    from_address: str
    from_channel: str  # PHONE | WHATSAPP
    to_address: str
    to_channel: str  # SMS | RCS | WHATSAPP
    content: dict[str, Any]


def _bad(message: str, context: str, code: int = errors.INVALID_PARAMETER) -> ValidationFailed:
    return ValidationFailed([Problem(code, message, context)])


def _check(command: Reply) -> list[Problem]:
    problems: list[Problem] = []
    text = command.content.get("text")
    if isinstance(text, str) and "\x00" in text:
        # PostgreSQL text cannot hold NUL; refuse it as a field error, not a driver fault.
        problems.append(
            Problem(errors.INVALID_PARAMETER, "The text must not contain NUL", "$.content.text")
        )
    if not phone.is_possible(command.from_address.removeprefix("whatsapp:")):
        problems.append(
            Problem(
                errors.NOT_A_MOBILE_NUMBER,
                f"'{command.from_address}' is not a possible E.164 phone number",
                "$.from.address",
            )
        )
    reached = REACHES[ChannelType(command.to_channel)]
    if AddressChannel(command.from_channel) not in reached:
        problems.append(
            Problem(
                errors.INVALID_PARAMETER,
                f"A {command.from_channel} address cannot write to a {command.to_channel} sender",
                "$.from.channel",
            )
        )
    if isinstance(text, str) and len(text) > MAX_TEXT:
        problems.append(
            Problem(
                errors.BODY_TOO_LONG,
                f"The text exceeds the {MAX_TEXT} character limit ({len(text)} characters)",
                "$.content.text",
            )
        )
    return problems


async def _sender(conn: AsyncConnection, account_sid: str, command: Reply) -> SenderRecord:
    for sender in await sender_addresses(conn, account_sid):
        if sender.channel == command.to_channel and sender.address == command.to_address:
            return sender
    raise _bad(
        f"'{command.to_address}' is not one of this account's {command.to_channel} senders",
        "$.to.address",
    )


async def reply(conn: AsyncConnection, account_sid: str, command: Reply, now: int) -> MessageRecord:
    """Stores the phone's message as INBOUND (STOP/START change its opt-out)."""
    problems = _check(command)
    if problems:
        raise ValidationFailed(problems)
    sender = await _sender(conn, account_sid, command)
    received = inbound.Inbound(sender, command.from_address, command.from_channel, command.content)
    return await inbound.receive(conn, received, now)


async def sender_addresses(conn: AsyncConnection, account_sid: str) -> list[SenderRecord]:
    """The senders a phone may write to (SMS, RCS and WhatsApp ones)."""
    reachable = {ChannelType.SMS, ChannelType.RCS, ChannelType.WHATSAPP}
    return [s for s in await senders.for_account(conn, account_sid) if s.channel in reachable]


@dataclass(frozen=True, slots=True)
class ThreadItem:
    """One bubble of a phone's conversation: a delivery to it, or a message it sent."""

    inbound: bool
    at: int
    channel: str
    sender_address: str  # our side of the conversation
    content: dict[str, Any]
    message_id: str
    identifier: str | None


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    number: str
    last_at: int
    last_text: str
    count: int


# The inbox page summarizes the newest activity; a thread page shows one number's history.
_SUMMARY_WINDOW = 500
_THREAD_WINDOW = 200


def _text(content: dict[str, Any]) -> str:
    text = content.get("text")
    return text if isinstance(text, str) else "(no text)"


def _delivery_item(d: Delivery) -> ThreadItem:
    return ThreadItem(
        False, d.delivered_at, d.channel, d.sender, d.content, d.message_id, d.identifier
    )


def _inbound_item(m: MessageRecord) -> ThreadItem:
    ours = m.recipient.get("address", "")
    return ThreadItem(True, m.created_at, m.channel or "", ours, m.content or {}, m.id, None)


async def threads(conn: AsyncConnection, account_sid: str) -> list[ThreadSummary]:
    """One entry per phone the sandbox delivered to or heard from, newest first."""
    delivered = await list_deliveries(
        conn, account_sid, SandboxFilter(), before=None, limit=_SUMMARY_WINDOW
    )
    received = await reads.list_messages(
        conn, account_sid, MessageFilter(status=INBOUND), before_id=None, limit=_SUMMARY_WINDOW
    )
    items = [(bare_number(d.to), _delivery_item(d)) for d in delivered]
    items += [
        (bare_number((m.sender or {}).get("address", "")), _inbound_item(m)) for m in received
    ]
    by_number: dict[str, list[ThreadItem]] = {}
    for number, item in items:
        by_number.setdefault(number, []).append(item)
    summaries = []
    for number, entries in by_number.items():
        last = max(entries, key=lambda i: i.at)
        summaries.append(ThreadSummary(number, last.at, _text(last.content), len(entries)))
    return sorted(summaries, key=lambda s: s.last_at, reverse=True)


async def thread(conn: AsyncConnection, account_sid: str, number: str) -> list[ThreadItem]:
    """A phone's conversation with every sender of the account, oldest first."""
    items = [
        _delivery_item(d)
        for d in await list_deliveries(
            conn, account_sid, SandboxFilter(to=number), before=None, limit=_THREAD_WINDOW
        )
    ]
    for sender in await sender_addresses(conn, account_sid):
        session = session_id(account_sid, sender.channel.value, sender.address, number)
        received = await reads.list_messages(
            conn,
            account_sid,
            MessageFilter(session_id=session),
            before_id=None,
            limit=_THREAD_WINDOW,
        )
        items += [_inbound_item(m) for m in received if m.inbound]
    return sorted(items, key=lambda i: i.at)
