"""Which kinds of route exist, and how one configured route becomes a channel instance.

A *route* is one configured connection: a `[[routes]]` entry of the config file with a
`name`, a `type` (a kind registered here) and the options that kind declares as a pydantic
model. Several routes may share a type (two SMPP binds to two aggregators); dispatch holds the
channels by route name. An adapter whose optional dependency is missing stays listed with the
reason it is disabled, so operators see why instead of a bare import error.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opencomms.channels.base import Channel
from opencomms.channels.options import RouteOptions
from opencomms.channels.sandbox import SandboxChannel
from opencomms.channels.smpp.config import SmppRouteConfig
from opencomms.channels.smtp.config import SmtpRouteConfig
from opencomms.domain.channels import ChannelType

SANDBOX = "sandbox"  # the type, and the name of the route used when none is configured


class UnknownChannel(LookupError):
    """No adapter of that type is registered, or it is disabled."""


class SandboxOptions(RouteOptions):
    delay: float = 0.0  # seconds from SENT to the DELIVERED receipt
    latency: float = 0.0  # seconds each send takes, as a network round trip would


@dataclass(frozen=True)
class ChannelKind:
    name: str
    plays: frozenset[ChannelType]  # the sender channels its routes can carry
    options: type[RouteOptions]
    # Builds the channel of one route from its name and validated options.
    factory: Callable[[str, Any], Channel] | None
    disabled_reason: str | None = None


@dataclass(frozen=True)
class RouteConfig:
    """One configured route: what `[[routes]]` says once validated."""

    name: str
    type: str
    options: RouteOptions


def _sandbox(name: str, options: SandboxOptions) -> Channel:
    return SandboxChannel(delay=options.delay, latency=options.latency, name=name)


# The adapters load when a route of theirs is built, not with the registry: every process
# reads the config models, only workers need SMPP and SMTP (with DKIM and DNS).
def smpp_route(name: str, options: SmppRouteConfig) -> Channel:
    from opencomms.channels.smpp.channel import smpp_route as factory

    return factory(name, options)


def smtp_channel(name: str, options: SmtpRouteConfig) -> Channel:
    from opencomms.channels.smtp.channel import smtp_channel as factory

    return factory(name, options)


KINDS: dict[str, ChannelKind] = {
    SANDBOX: ChannelKind(
        SANDBOX,
        frozenset(ChannelType),  # the sandbox mailbox plays EMAIL too
        SandboxOptions,
        _sandbox,
    ),
    "smpp": ChannelKind("smpp", frozenset({ChannelType.SMS}), SmppRouteConfig, smpp_route),
    "smtp": ChannelKind("smtp", frozenset({ChannelType.EMAIL}), SmtpRouteConfig, smtp_channel),
}


def register(kind: ChannelKind) -> None:
    """Adds a kind of route (the SMPP and SMTP adapters register themselves here)."""
    KINDS[kind.name] = kind


def kind_of(type_name: str) -> ChannelKind:
    entry = KINDS.get(type_name)
    if entry is None or entry.factory is None:
        reason = entry.disabled_reason if entry else "not registered"
        known = ", ".join(sorted(k for k, v in KINDS.items() if v.factory is not None))
        raise UnknownChannel(f"route type {type_name!r} is unavailable: {reason} (known: {known})")
    return entry


def create(route: RouteConfig) -> Channel:
    kind = kind_of(route.type)
    assert kind.factory is not None
    return kind.factory(route.name, route.options)


def build_routes(routes: Iterable[RouteConfig]) -> dict[str, Channel]:
    """A channel per configured route, by route name, as dispatch looks them up."""
    return {route.name: create(route) for route in routes}


def sandbox_route(delay: float = 0.0, latency: float = 0.0, name: str = SANDBOX) -> RouteConfig:
    return RouteConfig(name, SANDBOX, SandboxOptions(delay=delay, latency=latency))
