"""The sandbox channel: delivers into a local inbox, with outcomes scripted by the address.

It plays SMS, RCS and WhatsApp alike, so the whole product works with nothing else installed,
and it behaves like the real world where that matters to dispatch: refusals, transient
failures, receipts after a delay, a receipt that overtakes the send result. Every outcome
follows from the destination, the channel and the attempt number alone, so any process can
answer `query()` for a hand-off another process made.
"""

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opencomms.channels.base import (
    Handoff,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptSink,
    SendResult,
    TransientDeliveryError,
)
from opencomms.clock import now_ms
from opencomms.domain import errors
from opencomms.domain.channels import ChannelType
from opencomms.domain.emails import SANDBOX_EMAIL_DOMAIN

CARRIER_CONGESTION = 30017  # Twilio's code for a carrier that is temporarily overloaded

_REFUSED = {
    "+15005550001": (errors.INVALID_TO_NUMBER, "The 'To' number is not a valid phone number"),
    "+15005550002": (errors.CANNOT_ROUTE, "The 'To' phone number is not currently reachable"),
    "+15005550004": (errors.OPTED_OUT, "The recipient has opted out (STOP)"),
    "+15005550009": (errors.NOT_A_MOBILE_NUMBER, "The 'To' number is not a mobile number"),
}
_UNDELIVERED = {
    "+15005550010": (errors.UNREACHABLE_HANDSET, "Unreachable destination handset"),
    "+15005550011": (errors.UNKNOWN_DESTINATION, "Unknown destination handset"),
}
# Email outcomes, by the local part of the address (before any +tag, any case, any domain),
# so a test suite can make as many distinct addresses with one fate as it needs.
_EMAIL_REFUSED = {
    "fail": (errors.MESSAGE_FILTERED, "SMTP 554 5.7.1 The relay refused the email (sandbox)"),
    "optout": (errors.OPTED_OUT, "The recipient unsubscribed (sandbox)"),
}
_EMAIL_UNDELIVERED = {
    "bounce": (errors.UNKNOWN_DESTINATION, "Bounced: 550 5.1.1 no such mailbox (sandbox)"),
    "full": (errors.UNREACHABLE_HANDSET, "Bounced: 552 5.2.2 mailbox full (sandbox)"),
}
_EMAIL_FLAKY = "flaky"
_EMAIL_SLOW = "slow"
SLOW_MS = 5000  # how long a slow@ email stays SENT before it is DELIVERED
_READS = "+15005550020"
_NO_RCS = "+15005550030"
_FLAKY = "+15005550040"
_FLAKY_FAILURES = 2


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message the sandbox took, as a phone would have received it."""

    message_id: str
    attempt: int
    channel: str
    sender: str
    to: str
    content: dict[str, Any]
    external_id: str
    at: int


@dataclass
class SandboxInbox:
    """Everything the sandbox delivered, queryable by tests and (later) the console."""

    deliveries: list[Delivery] = field(default_factory=list)

    def for_message(self, message_id: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.message_id == message_id]

    def for_address(self, address: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.to == address]


def _number(address: str) -> str:
    # A WhatsApp address may carry the classic `whatsapp:` prefix; the script keys on digits.
    return address.removeprefix("whatsapp:")


def mailbox(address: str) -> str | None:
    """The scripted part of an email address (`bounce` of `Bounce+42@x.org`), or None."""
    local, at, _ = address.rpartition("@")
    return local.partition("+")[0].lower() if at else None


def check_send(channel: str, to: str, attempt: int) -> None:
    """Raises the scripted refusal for this hand-off, if any."""
    box = mailbox(to)
    if box is not None:
        if box in _EMAIL_REFUSED:
            raise PermanentDeliveryError(*_EMAIL_REFUSED[box])
        if box == _EMAIL_FLAKY and attempt <= _FLAKY_FAILURES:
            raise TransientDeliveryError(CARRIER_CONGESTION, "SMTP 451 4.3.0 Try again later")
        return
    number = _number(to)
    if number in _REFUSED:
        code, message = _REFUSED[number]
        raise PermanentDeliveryError(code, message)
    if number == _NO_RCS and channel == ChannelType.RCS:
        raise PermanentDeliveryError(errors.RCS_NOT_ENABLED, "The recipient is not RCS capable")
    if number == _FLAKY and attempt <= _FLAKY_FAILURES:
        raise TransientDeliveryError(CARRIER_CONGESTION, "Carrier network congestion")


def scripted_receipts(to: str, external_id: str) -> list[Receipt]:
    """The receipts a taken message gets, in order, one `delay` apart."""
    box = mailbox(to)
    if box in _EMAIL_UNDELIVERED:
        code, message = _EMAIL_UNDELIVERED[box]
        return [Receipt(external_id, "UNDELIVERED", code, message)]
    number = _number(to)
    if number in _UNDELIVERED:
        code, message = _UNDELIVERED[number]
        return [Receipt(external_id, "UNDELIVERED", code, message)]
    if number == _READS:
        return [Receipt(external_id, "DELIVERED", final=False), Receipt(external_id, "READ")]
    return [Receipt(external_id, "DELIVERED")]


def receipt_delay_ms(to: str, delay_ms: int) -> int:
    """How long after the hand-off (and after each other) the receipts come."""
    return max(delay_ms, SLOW_MS) if mailbox(to) == _EMAIL_SLOW else delay_ms


class SandboxChannel:
    def __init__(
        self,
        *,
        delay: float = 0.0,
        latency: float = 0.0,
        inbox: SandboxInbox | None = None,
        clock: Callable[[], int] = now_ms,
        name: str = "sandbox",
    ) -> None:
        self.name = name  # the route it plays
        self.delay_ms = int(delay * 1000)
        self.latency = latency  # seconds each send takes, as a network round trip would
        self.inbox = inbox if inbox is not None else SandboxInbox()
        self._clock = clock
        self._sink: ReceiptSink | None = None
        self._inbound: InboundSink | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        self._sink = receipts
        self._inbound = inbound

    async def receive(self, message: InboundMessage) -> None:
        """A reply from a sandbox phone (tests and the console): stored as INBOUND."""
        if self._inbound is None:
            raise RuntimeError("the sandbox is not open")
        await self._inbound(message)

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        check_send(message.channel, message.to, message.attempt)
        if message.channel == "EMAIL":
            external_id = f"{message.message_id}@{SANDBOX_EMAIL_DOMAIN}"  # a Message-ID
        else:
            external_id = "SM" + uuid.uuid4().hex
        at = self._clock()
        self.inbox.deliveries.append(
            Delivery(
                message.message_id,
                message.attempt,
                message.channel,
                message.sender,
                message.to,
                message.content,
                external_id,
                at,
            )
        )
        delay_ms = receipt_delay_ms(message.to, self.delay_ms)
        self._push_receipts(scripted_receipts(message.to, external_id), delay_ms)
        return SendResult(external_id)

    def _push_receipts(self, receipts: list[Receipt], delay_ms: int) -> None:
        if self._sink is None:
            return
        if not delay_ms:
            # Pushed before send() returns: the receipt overtakes the send result, as SMSCs do.
            for receipt in receipts:
                self._sink(receipt)
            return
        loop = asyncio.get_running_loop()
        for index, receipt in enumerate(receipts, start=1):
            handle = loop.call_later(delay_ms * index / 1000, self._emit, receipt)
            self._timers.add(handle)

    def _emit(self, receipt: Receipt) -> None:
        # Forget timers that have fired so a long-running sandbox does not accumulate them.
        now = asyncio.get_running_loop().time()
        self._timers = {t for t in self._timers if t.when() > now}
        if self._sink is not None:
            self._sink(receipt)

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        now = self._clock()
        found = []
        for handoff in handoffs:
            receipts = scripted_receipts(handoff.to, handoff.external_id)
            delay_ms = receipt_delay_ms(handoff.to, self.delay_ms)
            due = (now - handoff.attempted_at) // delay_ms if delay_ms else len(receipts)
            if due >= 1:
                found.append(receipts[min(due, len(receipts)) - 1])
        return found

    async def aclose(self) -> None:
        # Receipts still pending are not lost: dispatch asks query() for overdue ones.
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._sink = None
