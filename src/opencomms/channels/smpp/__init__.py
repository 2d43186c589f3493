"""SMS over SMPP 3.4: the `smpp` route kind (see docs/smpp.md)."""

from opencomms.channels.smpp.channel import RouteDownError, RouteState, SmppChannel, smpp_route
from opencomms.channels.smpp.config import SmppRouteConfig

__all__ = ["RouteDownError", "RouteState", "SmppChannel", "SmppRouteConfig", "smpp_route"]
