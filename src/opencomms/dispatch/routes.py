"""What this worker knows of each route's health, from its own hand-offs.

A channel that raises `RouteUnavailable` marks its route down; while it is down, the route's
messages are held back (released to the queue, no attempt used) until the next probe time,
which backs off from 1 s doubling to `cap`. The first hand-off tried after that time is the
probe: taken, and the route is up again; refused, and the wait doubles. The states are
written to `route_states` (store/route_states.py) for `/readyz`.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from opencomms.channels import Channel
from opencomms.channels.base import KnowsRouteState

log = logging.getLogger("opencomms.dispatch")

_FIRST_WAIT_MS = 1000


@dataclass
class RouteHealth:
    up: bool = True
    reason: str = ""
    since: int = 0
    retry_at: int = 0  # while down: when the next probe may go
    failures: int = 0


class RouteBoard:
    def __init__(self, routes: list[str], now: int, cap_ms: int = 30_000) -> None:
        self.cap_ms = cap_ms
        self.routes = {name: RouteHealth(since=now) for name in routes}
        self.version = 0  # bumped on every change of state, so reporters write only then

    def held_until(self, route: str, now: int) -> int | None:
        """While the route is down and its next probe is not due: when it is."""
        health = self.routes.get(route)
        if health is None or health.up or now >= health.retry_at:
            return None
        return health.retry_at

    def down(self, route: str, reason: str, now: int) -> int:
        """The route refused a hand-off as unavailable; returns when to probe it again."""
        health = self.routes.setdefault(route, RouteHealth(since=now))
        if health.up:
            log.warning("route %s down (%s): its messages wait", route, reason)
            health.up, health.since, health.failures, health.retry_at = False, now, 0, 0
            self.version += 1
        elif reason != health.reason:
            self.version += 1
        health.reason = reason
        if now >= health.retry_at:
            # A probe round failed (refusals of the same round share its retry time).
            health.retry_at = now + min(self.cap_ms, _FIRST_WAIT_MS * 2 ** min(health.failures, 16))
            health.failures += 1
        return health.retry_at

    def taken(self, route: str, now: int) -> None:
        """The route took a hand-off: it is up."""
        health = self.routes.get(route)
        if health is None or health.up:
            return
        log.warning("route %s up again after %d s", route, (now - health.since) // 1000)
        health.up, health.reason, health.since, health.failures = True, "", now, 0
        self.version += 1


@dataclass(frozen=True, slots=True)
class View:
    route: str
    up: bool
    reason: str
    since: int


def route_view(board: RouteBoard, channels: Mapping[str, Channel], now: int) -> list[View]:
    """Each route's state: what its channel knows of its connections, else what the last
    hand-offs said."""
    views = []
    for name, channel in channels.items():
        health = board.routes.get(name) or RouteHealth(since=now)
        up, reason = health.up, health.reason
        if up and isinstance(channel, KnowsRouteState):
            up, reason = channel.route_state()
        views.append(View(name, up, reason, health.since))
    return views
