"""The one contract every channel adapter meets, and the two errors it may raise.

Channels never touch the database: dispatch hands them an `OutboundMessage`, records what they
answer, and turns their receipts into statuses. A channel reports receipts two ways: pushed
through the sink given to `open()` as they arrive, and on demand through `query()` for
hand-offs whose receipt is overdue (after a crash lost the pushed one, for instance).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One hand-off: a rendered message from one sender to one address."""

    message_id: str
    attempt: int  # 1-based attempt number of the message; with message_id, an idempotency key
    channel: str  # SMS | RCS | WHATSAPP
    sender: str  # the sender's address
    to: str  # the recipient's address
    content: dict[str, Any]  # rendered content (every Liquid template already applied)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The channel took the message; `external_id` is its own id for it (SMSC id, SID...)."""

    external_id: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the channel learned later about a hand-off: DELIVERED, UNDELIVERED or READ."""

    external_id: str
    status: str
    error_code: int | None = None
    error_message: str | None = None
    final: bool = True  # False when another receipt may follow (DELIVERED before READ)


@dataclass(frozen=True, slots=True)
class Handoff:
    """An earlier hand-off, as `query()` needs it to look the outcome up."""

    external_id: str
    channel: str
    to: str
    attempt: int
    attempted_at: int  # epoch ms


ReceiptSink = Callable[[Receipt], None]


class DeliveryError(Exception):
    """The channel refused or failed a hand-off, with a Twilio-style error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransientDeliveryError(DeliveryError):
    """Trying again later may work (throttled, network down, carrier congestion)."""


class PermanentDeliveryError(DeliveryError):
    """This route will never take this message (invalid number, opted out, not capable)."""


@runtime_checkable
class Channel(Protocol):
    name: str

    async def open(self, receipts: ReceiptSink) -> None:
        """Connects; pushed receipts go to `receipts` from then on."""

    async def send(self, message: OutboundMessage) -> SendResult:
        """Hands one message over, or raises a DeliveryError subclass."""

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        """The latest receipt known for each hand-off; hand-offs with none are left out."""

    async def aclose(self) -> None:
        """Disconnects; receipts not yet pushed are found again later through `query()`."""
