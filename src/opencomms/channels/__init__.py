"""Channel adapters behind one protocol: only dispatch calls them; they never see the database."""

from opencomms.channels.base import (
    ROUTE_DOWN_REASONS,
    Channel,
    DeliveryError,
    Handoff,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    ReceiptSink,
    RouteUnavailable,
    SendResult,
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
    "ROUTE_DOWN_REASONS",
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
    "RouteUnavailable",
    "SandboxChannel",
    "SandboxInbox",
    "SendResult",
    "SmtpChannel",
    "SmtpRouteConfig",
    "TransientDeliveryError",
    "UnknownChannel",
    "build_routes",
    "create",
    "register",
]
