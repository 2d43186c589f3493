"""SMS over SMPP 3.4: the `smpp` route kind (see docs/smpp.md)."""

from typing import TYPE_CHECKING

from opencomms import lazy

if TYPE_CHECKING:
    from opencomms.channels.smpp.channel import RouteDownError, RouteState, SmppChannel, smpp_route
    from opencomms.channels.smpp.config import SmppRouteConfig

__all__ = ["RouteDownError", "RouteState", "SmppChannel", "SmppRouteConfig", "smpp_route"]

# Loaded on first use: the config model is read by every process, the channel by workers.
_HOMES = {
    "RouteDownError": "channel",
    "RouteState": "channel",
    "SmppChannel": "channel",
    "smpp_route": "channel",
    "SmppRouteConfig": "config",
}
__getattr__ = lazy.exports(__name__, _HOMES)
