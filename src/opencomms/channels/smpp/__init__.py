"""SMS over SMPP 3.4: the `smpp` route kind (see docs/smpp.md)."""

from opencomms.channels.smpp.channel import (
    InboundSink,
    MultipartResult,
    RouteDownError,
    RouteState,
    SmppChannel,
    smpp_route,
)
from opencomms.channels.smpp.config import SmppRouteConfig
from opencomms.channels.smpp.inbound import InboundMessage

__all__ = [
    "InboundMessage",
    "InboundSink",
    "MultipartResult",
    "RouteDownError",
    "RouteState",
    "SmppChannel",
    "SmppRouteConfig",
    "smpp_route",
]
