"""Channel adapters behind one protocol: only dispatch calls them; they never see the database."""

from typing import TYPE_CHECKING

from opencomms import lazy

if TYPE_CHECKING:
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

# Loaded on first use: an API process needs the registry's config models, not every adapter.
_HOMES = {
    "Channel": "base",
    "DeliveryError": "base",
    "Handoff": "base",
    "InboundMessage": "base",
    "InboundSink": "base",
    "OutboundMessage": "base",
    "PermanentDeliveryError": "base",
    "Receipt": "base",
    "ReceiptSink": "base",
    "ROUTE_DOWN_REASONS": "base",
    "RouteUnavailable": "base",
    "SendResult": "base",
    "SharedPacing": "base",
    "SlotReserver": "base",
    "TransientDeliveryError": "base",
    "RouteOptions": "options",
    "KINDS": "registry",
    "ChannelKind": "registry",
    "RouteConfig": "registry",
    "UnknownChannel": "registry",
    "build_routes": "registry",
    "create": "registry",
    "register": "registry",
    "Delivery": "sandbox",
    "SandboxChannel": "sandbox",
    "SandboxInbox": "sandbox",
    "SmtpChannel": "smtp",
    "SmtpRouteConfig": "smtp",
}
__getattr__ = lazy.exports(__name__, _HOMES)
