"""Which sender and channel try which recipient address, in order.

Until operators declare senders (a later issue), a sender id or pool id is accepted as given
and played by the sandbox, and a `from` address gets a stable implicit sender id derived from
it, so every message can show a complete `from` as the spec's MessageSender demands.
"""

import hashlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

SMS, RCS, WHATSAPP = "SMS", "RCS", "WHATSAPP"
PHONE = "PHONE"

# Which recipient address channels each sender channel reaches.
REACHES: dict[str, frozenset[str]] = {
    SMS: frozenset({PHONE}),
    RCS: frozenset({PHONE}),
    WHATSAPP: frozenset({WHATSAPP}),
}
# A pool with no channel control tries its channels richest first.
POOL_DEFAULT_ORDER = (RCS, WHATSAPP, SMS)
# Sandbox sender addresses used when the request names no address (Twilio's magic number).
SANDBOX_ADDRESS = {SMS: "+15005550006", RCS: "opencomms_sandbox_agent", WHATSAPP: "+15005550006"}
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


@cache
def implicit_sender_id(channel: str, address: str) -> str:
    digest = int.from_bytes(hashlib.sha256(f"{channel}:{address}".encode()).digest()[:17], "big")
    chars = [_CROCKFORD[(digest >> (5 * i)) & 31] for i in range(26)]
    chars[-1] = _CROCKFORD[(digest >> 125) & 7]  # first character 0-7, as the pattern asks
    return "comms_sender_" + "".join(reversed(chars))


class Address(NamedTuple):
    address: str
    channel: str


@dataclass(frozen=True, slots=True)
class Sender:
    address: str
    channel: str
    sender_id: str
    sender_pool_id: str | None = None

    def as_json(self) -> dict[str, str]:
        out = {"address": self.address, "channel": self.channel, "senderId": self.sender_id}
        if self.sender_pool_id:
            out["senderPoolId"] = self.sender_pool_id
        return out


@dataclass(frozen=True)
class SenderSpec:
    """The request's `from`, in domain terms."""

    address: str | None = None
    channel: str | None = None
    sender_id: str | None = None
    sender_pool_id: str | None = None
    filter_in: tuple[str, ...] = ()
    priority: dict[str, int] = field(default_factory=dict)


def sender_spec(data: dict[str, Any] | None) -> SenderSpec | None:
    """A request's `from` (address/channel, senderId, or senderPoolId with channel control),
    as the request gave it and the operation stores it, in domain terms."""
    if data is None:
        return None
    control = data.get("channels") or {}
    return SenderSpec(
        address=data.get("address"),
        channel=data.get("channel"),
        sender_id=data.get("senderId"),
        sender_pool_id=data.get("senderPoolId"),
        filter_in=tuple(control.get("filterIn") or ()),
        priority={p["channel"]: p["priority"] for p in control.get("priority") or []},
    )


@dataclass(frozen=True, slots=True)
class Route:
    """One try: this sender to this address."""

    sender: Sender
    to: Address


def _sender_for(spec: SenderSpec | None, channel: str) -> Sender:
    if spec is not None and spec.address and spec.channel:
        return Sender(spec.address, spec.channel, implicit_sender_id(spec.channel, spec.address))
    address = SANDBOX_ADDRESS[channel]
    sender_id = (spec.sender_id if spec else None) or implicit_sender_id(channel, address)
    pool = spec.sender_pool_id if spec else None
    return Sender(address, channel, sender_id, pool)


def display_sender(spec: SenderSpec | None) -> Sender:
    """The `from` to show for a message no route reaches: what the request asked for."""
    channel = spec.channel if spec is not None and spec.channel else SMS
    return _sender_for(spec, channel)


def _channels(spec: SenderSpec | None, to: Address) -> list[str]:
    if spec is not None and spec.channel:
        return [spec.channel]
    if spec is not None and spec.sender_pool_id:
        order = [c for c in POOL_DEFAULT_ORDER if not spec.filter_in or c in spec.filter_in]
        # Higher priority first, as Twilio's channel control reads; ties keep the default order.
        order.sort(key=lambda c: -spec.priority.get(c, 0))
        return order
    return [SMS] if to.channel == PHONE else [WHATSAPP]


class FirstSenders:
    """The first sender for each combination of address channels, worked out once per send.

    Routing depends on the request's `from` and on the channels of a recipient's addresses,
    never on the numbers themselves, so 10,000 recipients need only a handful of plans.
    """

    def __init__(self, spec: SenderSpec | None) -> None:
        self.spec = spec
        self._memo: dict[tuple[str, ...], Sender | None] = {}

    def __call__(self, addresses: list[Address]) -> Sender | None:
        key = tuple(a.channel for a in addresses)
        if key not in self._memo:
            routes = plan_routes(self.spec, addresses)
            self._memo[key] = routes[0].sender if routes else None
        return self._memo[key]


def plan_routes(spec: SenderSpec | None, addresses: list[Address]) -> list[Route]:
    """Every try for one recipient, in order; empty means unaddressable."""
    routes = []
    for to in addresses:
        for channel in _channels(spec, to):
            if to.channel in REACHES[channel]:
                routes.append(Route(_sender_for(spec, channel), to))
    return routes
