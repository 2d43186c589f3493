"""Channel adapters behind one protocol: only dispatch calls them; they never see the database."""

from opencomms.channels.base import (
    Channel,
    DeliveryError,
    Handoff,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptSink,
    SendResult,
    SharedPacing,
    SlotReserver,
    TransientDeliveryError,
)
from opencomms.channels.options import RouteOptions
from opencomms.channels.registry import (
    KINDS,
    ChannelKind,
    RouteConfig,
    UnknownChannel,
    build_routes,
    create,
    register,
)
from opencomms.channels.sandbox import Delivery, SandboxChannel, SandboxInbox
from opencomms.channels.smtp import SmtpChannel, SmtpRouteConfig

__all__ = [
    "KINDS",
    "Channel",
    "ChannelKind",
    "Delivery",
    "DeliveryError",
    "Handoff",
    "InboundMessage",
    "InboundSink",
    "OutboundMessage",
    "PermanentDeliveryError",
    "Receipt",
    "ReceiptSink",
    "RouteConfig",
    "RouteOptions",
    "SandboxChannel",
    "SandboxInbox",
    "SendResult",
    "SharedPacing",
    "SlotReserver",
    "SmtpChannel",
    "SmtpRouteConfig",
    "TransientDeliveryError",
    "UnknownChannel",
    "build_routes",
    "create",
    "register",
]
