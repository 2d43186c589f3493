"""The one contract every channel adapter meets, and the two errors it may raise.

Channels never touch the database: dispatch hands them an `OutboundMessage`, records what they
answer, and turns their receipts into statuses. One channel instance serves one configured
route (a `[[routes]]` entry, see channels/registry.py); its `name` is the route's name.

The contract, for adapter authors (SMPP, SMTP, HTTP...):

- `open(receipts, inbound)` connects. From then on the adapter calls `receipts(Receipt)` for
  every delivery receipt and `inbound(InboundMessage)` for every message a recipient sends
  back, from the event loop. Both return an awaitable that completes once the item is durably
  stored (committed): an adapter that must acknowledge to its peer (an SMPP `deliver_sm_resp`)
  awaits it first, so a crash never loses an acknowledged receipt. Not awaiting it is allowed
  (the sandbox does not); the item is then stored as soon as the dispatcher gets to it.
- `send(message)` hands one message over and answers a `SendResult`, or raises
  `PermanentDeliveryError` (this route will never take it: dispatch falls back to the next
  planned route) or `TransientDeliveryError` (retried later with backoff). Any other
  exception counts as transient with an unknown outcome (30008).
  - `SendResult.external_id` is the adapter's id for the hand-off (matched by receipts and
    by `GET /Messages/Seek/{id}`); `parts` are further ids the same hand-off got (the parts of
    a concatenated SMS): a receipt naming any of them applies to the attempt.
  - `receipt_expected=False` says no receipt will ever come (SMTP: the relay's 2xx is all
    there is): the message is DELIVERED at once.
- `query(handoffs)` answers the latest receipt known for hand-offs whose receipt is overdue
  (a crash lost the pushed one, or the peer never pushes); leave out the ones with none.
  Adapters that cannot ask their peer answer `[]`.
- `aclose()` disconnects; receipts not yet pushed are found again later through `query()`.
- `RouteUnavailable` (a transient error) says the route itself cannot take anything now: no
  connection, a bind or login refused, the relay unreachable. Raise it where connecting fails,
  before anything was handed over. Dispatch then holds the route's messages back (they wait,
  using no attempt) and tries the route again with a capped backoff until it takes one; their
  validity period still runs (30036 when it ends). Its `reason` is one of `ROUTE_DOWN_REASONS`:
  fixed words that `/readyz` may show anyone, never a driver's own error text.

A route with a rate of its own (an SMTP route's `mps`) may also meet `SharedPacing`: dispatch
then hands it `reserve(route, mps, count)`, which takes `count` hand-off slots (epoch ms)
from the route's schedule that every worker process shares, so the rate holds across
processes, not per process.
"""

from collections.abc import Awaitable, Callable, Sequence
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
    parts: tuple[str, ...] = ()  # further ids of the same hand-off (long SMS parts)
    receipt_expected: bool = True  # False: taking it was final, the message is DELIVERED


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


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a recipient sent to one of our senders, as the route received it."""

    channel: str  # SMS | RCS | WHATSAPP
    sender: str  # the remote party's address (who wrote to us)
    to: str  # our sender's address it was written to
    content: dict[str, Any]  # {"text": ...}, as a message's content
    # The route's id for it, the same on every delivery of it: a message delivered again (its
    # acknowledgement was lost in a crash) is stored once. None: no such id.
    external_id: str | None = None
    received_at: int | None = None  # epoch ms; None: when stored
    # When external_id is a digest of what arrived rather than an id the peer gave: the same
    # digest this long (ms) after the stored one is a new message (the same text sent again).
    repeat_after_ms: int | None = None


# Takes `count` slots (epoch ms, ascending) of the route's shared schedule paced at `mps`.
SlotReserver = Callable[[str, float, int], Awaitable[list[int]]]

# Both sinks return an awaitable that completes once the item is stored (see above).
ReceiptSink = Callable[[Receipt], Awaitable[None]]
InboundSink = Callable[[InboundMessage], Awaitable[None]]


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


# Why a route is down, in words fit for an anonymous readiness probe.
ROUTE_DOWN_REASONS = (
    "connection refused",  # nothing listens, or the host is unreachable
    "connection lost",  # it was up and dropped; reconnecting
    "login refused",  # the peer refused our credentials (SMPP bind, SMTP AUTH)
    "closing",  # the route is shutting down
    "unavailable",  # anything else
)


class RouteUnavailable(TransientDeliveryError):
    """The route cannot take any message now; nothing of this one was handed over."""

    def __init__(self, code: int, message: str, reason: str = "unavailable") -> None:
        super().__init__(code, message)
        self.reason = reason if reason in ROUTE_DOWN_REASONS else "unavailable"


@runtime_checkable
class KnowsRouteState(Protocol):
    """Optional: a channel that holds connections knows whether its route is up without
    waiting for a hand-off to fail (an SMPP bind refused at start); `/readyz` shows it."""

    def route_state(self) -> tuple[bool, str]:
        """(up, reason): the reason in ROUTE_DOWN_REASONS' words, "" when up."""


@runtime_checkable
class Channel(Protocol):
    name: str

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        """Connects; pushed receipts go to `receipts`, inbound messages to `inbound`."""

    async def send(self, message: OutboundMessage) -> SendResult:
        """Hands one message over, or raises a DeliveryError subclass."""

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        """The latest receipt known for each hand-off; hand-offs with none are left out."""

    async def aclose(self) -> None:
        """Disconnects; receipts not yet pushed are found again later through `query()`."""


@runtime_checkable
class SharedPacing(Protocol):
    """A channel whose own rate must hold across worker processes (see the module doc)."""

    def share_pacing(self, reserve: SlotReserver) -> None:
        """From now on, hand-off slots come from `reserve` rather than this process alone."""
