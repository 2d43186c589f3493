"""Which channel adapters exist, and which route channels each one plays.

Built-ins register here. An adapter whose optional dependency is missing stays listed with the
reason it is disabled, so operators see why instead of a bare import error.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opencomms.channels.base import Channel
from opencomms.channels.sandbox import SandboxChannel
from opencomms.channels.smtp import smtp_channel
from opencomms.domain.channels import ChannelType
from opencomms.domain.routing import RCS, SMS, WHATSAPP

EMAIL = ChannelType.EMAIL.value


class UnknownChannel(LookupError):
    """No adapter of that name is registered, or it is disabled."""


@dataclass(frozen=True)
class ChannelKind:
    name: str
    plays: frozenset[str]  # the route channels (SMS, RCS, WHATSAPP) it can carry
    factory: Callable[..., Channel] | None
    disabled_reason: str | None = None


KINDS: dict[str, ChannelKind] = {
    "sandbox": ChannelKind("sandbox", frozenset({SMS, RCS, WHATSAPP, EMAIL}), SandboxChannel),
    "smtp": ChannelKind("smtp", frozenset({EMAIL}), smtp_channel),
}


def create(kind: str, **options: Any) -> Channel:
    entry = KINDS.get(kind)
    if entry is None or entry.factory is None:
        reason = entry.disabled_reason if entry else "not registered"
        raise UnknownChannel(f"channel {kind!r} is unavailable: {reason}")
    return entry.factory(**options)


def routes_for(kind: str, channel: Channel) -> dict[str, Channel]:
    """The adapter mapped to every route channel it plays, as dispatch looks channels up."""
    return dict.fromkeys(sorted(KINDS[kind].plays), channel)
