"""Resolve Senders: the best sender/recipient pairings for one person's addresses.

The order follows the spec's examples, as routing's does (`routing.CHANNEL_ORDER`): channels
richest first (RCS, then WhatsApp, then SMS, then email), reordered by the caller's
`channels.priority` (lowest value first; channels it does not name keep that order after the
named ones) and narrowed by `channels.filterIn`.
Within a channel the person's addresses keep the order they were given, and a phone sender
from the recipient's own country comes before one from abroad. At most ten pairings.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from opencomms.domain import errors, phone
from opencomms.domain.channels import REACHES, ChannelType
from opencomms.domain.errors import Problem
from opencomms.domain.routing import CHANNEL_ORDER
from opencomms.domain.senders import SenderRecord, SenderStatus

MAX_RESULTS = 10
_PHONE_CHANNELS = frozenset({"PHONE", "WHATSAPP"})


@dataclass(frozen=True)
class ChannelControl:
    filter_in: frozenset[str] = frozenset()
    priority: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RecipientAddress:
    address: str
    channel: str  # the spec's CommunicationChannel: PHONE, WHATSAPP, EMAIL, PUSH


@dataclass(frozen=True)
class Pairing:
    sender: SenderRecord
    to: RecipientAddress
    priority: int


def recipient_problems(recipients: list[RecipientAddress], prefix: str) -> list[Problem]:
    """Phone and WhatsApp addresses must be possible E.164 numbers (decision 12)."""
    problems = []
    for index, recipient in enumerate(recipients):
        if recipient.channel in _PHONE_CHANNELS and not phone.is_possible(recipient.address):
            problems.append(
                Problem(
                    errors.NOT_A_MOBILE_NUMBER,
                    f"'{recipient.address}' is not a valid E.164 phone number",
                    f"{prefix}[{index}].address",
                )
            )
    return problems


def channel_order(control: ChannelControl) -> list[ChannelType]:
    allowed = [c for c in CHANNEL_ORDER if not control.filter_in or c in control.filter_in]
    # A stable sort: named channels by their value, then the rest in the default order.
    return sorted(allowed, key=lambda c: (c not in control.priority, control.priority.get(c, 0)))


def _abroad(sender: SenderRecord, to: RecipientAddress) -> bool:
    if to.channel not in _PHONE_CHANNELS:
        return False
    home = phone.country_code(sender.address)
    return home is not None and home != phone.country_code(to.address)


def resolve(
    senders: Iterable[SenderRecord], recipients: list[RecipientAddress], control: ChannelControl
) -> list[Pairing]:
    """The best pairings, best first, each with its rank as `priority` (0 is best)."""
    rank = {channel: i for i, channel in enumerate(channel_order(control))}
    distinct = list(dict.fromkeys(recipients))
    active = [s for s in senders if s.status == SenderStatus.ACTIVATED and s.channel in rank]
    candidates = [
        ((rank[s.channel], index, _abroad(s, to), s.id), s, to)
        for index, to in enumerate(distinct)
        for s in active
        if to.channel in REACHES[s.channel]
    ]
    candidates.sort(key=lambda c: c[0])
    return [Pairing(s, to, i) for i, (_, s, to) in enumerate(candidates[:MAX_RESULTS])]
