"""Channel adapters behind one protocol: only dispatch calls them; they never see the database."""

from opencomms.channels.base import (
    Channel,
    DeliveryError,
    Handoff,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptSink,
    SendResult,
    TransientDeliveryError,
)
from opencomms.channels.registry import KINDS, ChannelKind, UnknownChannel, create, routes_for
from opencomms.channels.sandbox import Delivery, SandboxChannel, SandboxInbox

__all__ = [
    "KINDS",
    "Channel",
    "ChannelKind",
    "Delivery",
    "DeliveryError",
    "Handoff",
    "OutboundMessage",
    "PermanentDeliveryError",
    "Receipt",
    "ReceiptSink",
    "SandboxChannel",
    "SandboxInbox",
    "SendResult",
    "TransientDeliveryError",
    "UnknownChannel",
    "create",
    "routes_for",
]
