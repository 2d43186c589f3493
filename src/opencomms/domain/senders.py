"""Senders: the operator's declared inventory (phone numbers, WhatsApp senders, RCS agents,
email addresses and domains), each carried by one configured route.

A sender's id is derived from its account, channel and address, so it stays the same across
restarts and config reloads without any lookup, and two accounts declaring one address get
two senders.
"""

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from opencomms.domain.channels import ChannelType

SENDER_PREFIX = "comms_sender_"
SENDER_POOL_PREFIX = "comms_senderpool_"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class SenderStatus(StrEnum):
    ACTIVATED = "ACTIVATED"
    DEACTIVATED = "DEACTIVATED"  # declared once, gone from the config now: kept for history


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id of the spec's shape (prefix + 26 Crockford characters, the first 0-7)."""
    digest = int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:17], "big")
    chars = [_CROCKFORD[(digest >> (5 * i)) & 31] for i in range(26)]
    chars[-1] = _CROCKFORD[(digest >> 125) & 7]
    return prefix + "".join(reversed(chars))


def sender_id(account_sid: str, channel: str, address: str) -> str:
    return derived_id(SENDER_PREFIX, account_sid, channel, address)


@dataclass(frozen=True, slots=True)
class SenderRecord:
    """A sender as the store keeps it."""

    id: str
    account_sid: str
    channel: ChannelType
    address: str
    route: str  # the name of the configured route that carries it
    mps: float = 0.0  # messages per second across every worker; 0 = unlimited
    display_name: str | None = None
    status: SenderStatus = SenderStatus.ACTIVATED
    tags: dict[str, str] = field(default_factory=dict)
    created_at: int = 0  # epoch ms
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class DeclaredSender:
    """A `[[senders]]` entry of the config file; `account_sid` None means the bootstrap
    account (the one `serve` was started for, or the oldest)."""

    channel: ChannelType
    address: str
    route: str
    mps: float = 0.0
    account_sid: str | None = None
    display_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def record(self, account_sid: str) -> SenderRecord:
        account = self.account_sid or account_sid
        return SenderRecord(
            id=sender_id(account, self.channel, self.address),
            account_sid=account,
            channel=self.channel,
            address=self.address,
            route=self.route,
            mps=self.mps,
            display_name=self.display_name,
            tags=dict(self.tags),
        )


# With no sender declared, every account gets these, on the sandbox route: Twilio's magic
# test number for SMS and WhatsApp, and a sandbox RCS agent.
SANDBOX_ROUTE = "sandbox"
DEFAULT_SENDERS = (
    DeclaredSender(ChannelType.SMS, "+15005550006", SANDBOX_ROUTE),
    DeclaredSender(ChannelType.RCS, "opencomms_sandbox_agent", SANDBOX_ROUTE),
    DeclaredSender(ChannelType.WHATSAPP, "+15005550006", SANDBOX_ROUTE),
)
