"""Which sender, on which route, tries which recipient address, in which order.

A request's `from` resolves, at accept time, to candidate senders of the caller's account:
the one sender it names (`senderId`, or `address` + `channel`), the members of the pool it
names (`senderPoolId`, narrowed by `channels.filterIn` and ordered by `channels.priority`), or,
without `from`, the account's best sender of each channel. A recipient's *plan* is then every
(sender, address) pairing that can reach it, in the order they are tried: candidates in
channel priority order, and for each the recipient's addresses it reaches. The plan is stored
with the message; dispatch follows it and never routes again.

With no priority given, richer channels come first, as the spec's Resolve examples rank them:
RCS, then WhatsApp, then SMS (so a phone number goes by RCS when the account has an RCS
sender, and falls back to SMS).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opencomms.domain import errors
from opencomms.domain.channels import REACHES, ChannelType
from opencomms.domain.errors import Problem
from opencomms.domain.senders import SENDER_PREFIX, SenderRecord, SenderStatus, derived_id

CHANNEL_ORDER = (ChannelType.RCS, ChannelType.WHATSAPP, ChannelType.SMS, ChannelType.EMAIL)
_RANK = {channel: rank for rank, channel in enumerate(CHANNEL_ORDER)}
_CHANNELS = frozenset(c.value for c in ChannelType)


class Address(NamedTuple):
    address: str
    channel: str  # an AddressChannel value


@dataclass(frozen=True, slots=True)
class Sender:
    """A sender as a message shows it (`from`), with the route that carries it."""

    address: str
    channel: str  # a ChannelType value
    sender_id: str
    sender_pool_id: str | None = None
    route: str = ""

    def as_json(self) -> dict[str, str]:
        out = {"address": self.address, "channel": self.channel, "senderId": self.sender_id}
        if self.sender_pool_id:
            out["senderPoolId"] = self.sender_pool_id
        return out


def shown(record: SenderRecord, pool_id: str | None = None) -> Sender:
    return Sender(record.address, record.channel.value, record.id, pool_id, record.route)


@dataclass(frozen=True)
class SenderSpec:
    """The request's `from`, in domain terms."""

    address: str | None = None
    channel: str | None = None
    sender_id: str | None = None
    sender_pool_id: str | None = None
    filter_in: tuple[str, ...] = ()
    priority: dict[str, int] = field(default_factory=dict)
    # Positions of `channels.priority` items that are not {channel, priority} objects (the
    # spec's item schema has no `type`, so its own check lets them through).
    malformed_priority: tuple[int, ...] = ()

    @property
    def pool_lookup(self) -> str | None:
        """The pool whose members routing chooses from: only when `from` names a pool and
        no single sender."""
        if self.sender_pool_id and not self.sender_id and not self.address:
            return self.sender_pool_id
        return None


def sender_spec(data: dict[str, Any] | None) -> SenderSpec | None:
    """A request's `from` (address/channel, senderId, or senderPoolId with channel control),
    as the request gave it and the operation stores it, in domain terms."""
    if not isinstance(data, dict):
        return None
    control = data.get("channels")
    control = control if isinstance(control, dict) else {}
    priority: dict[str, int] = {}
    malformed: list[int] = []
    items = control.get("priority")
    for index, item in enumerate(items if isinstance(items, list) else []):
        if _is_priority_item(item):
            priority[item["channel"]] = item["priority"]
        else:
            malformed.append(index)
    filter_in = control.get("filterIn")
    return SenderSpec(
        address=data.get("address"),
        channel=data.get("channel"),
        sender_id=data.get("senderId"),
        sender_pool_id=data.get("senderPoolId"),
        filter_in=tuple(c for c in filter_in if isinstance(c, str))
        if isinstance(filter_in, list)
        else (),
        priority=priority,
        malformed_priority=tuple(malformed),
    )


def _is_priority_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("channel") in _CHANNELS
        and isinstance(item.get("priority"), int)
        and not isinstance(item.get("priority"), bool)
    )


@dataclass(frozen=True)
class AccountSenders:
    """What routing may choose from: the account's senders (deactivated ones included, to
    say why they cannot be used) and, when `from` names a pool, its members."""

    senders: Sequence[SenderRecord] = ()
    pool: Sequence[SenderRecord] | None = None


@dataclass(frozen=True)
class Candidates:
    """The senders a send may use, in the order they are tried; `shown` is the `from` a
    recipient none of them reaches is stored with."""

    senders: tuple[Sender, ...]
    shown: Sender


def _sender_problem(message: str, context: str) -> Problem:
    return Problem(errors.INVALID_FROM, message, context)


def candidates(
    spec: SenderSpec | None, available: AccountSenders
) -> tuple[Candidates | None, list[Problem]]:
    """The candidate senders for `from`, or the problems that make `from` unusable."""
    problems = [
        Problem(
            errors.INVALID_PARAMETER,
            "Each channels.priority item must be an object with a `channel`"
            " (SMS, RCS or WHATSAPP) and an integer `priority`",
            f"$.from.channels.priority[{index}]",
        )
        for index in (spec.malformed_priority if spec else ())
    ]
    if problems:
        return None, problems
    if spec is not None and spec.sender_id:
        return _one(_named_by_id(spec.sender_id, available), "$.from.senderId", spec.sender_id)
    if spec is not None and spec.address and spec.channel:
        found = _named_by_address(spec.channel, spec.address, available)
        label = f"{spec.channel} sender '{spec.address}'"
        return _one(found, "$.from.address", label)
    if spec is not None and spec.sender_pool_id:
        return _pool(spec, available)
    best = _best_per_channel(s for s in available.senders if s.status == SenderStatus.ACTIVATED)
    chosen = tuple(shown(s) for s in best)
    return Candidates(chosen, chosen[0] if chosen else _nobody()), []


def _named_by_id(sender_id: str, available: AccountSenders) -> SenderRecord | None:
    return next((s for s in available.senders if s.id == sender_id), None)


def _named_by_address(channel: str, address: str, available: AccountSenders) -> SenderRecord | None:
    return next(
        (s for s in available.senders if s.channel == channel and s.address == address), None
    )


def _one(
    record: SenderRecord | None, context: str, label: str
) -> tuple[Candidates | None, list[Problem]]:
    if record is None:
        return None, [_sender_problem(f"{label} is not a sender of this account", context)]
    if record.status != SenderStatus.ACTIVATED:
        return None, [_sender_problem(f"{label} is deactivated", context)]
    sender = shown(record)
    return Candidates((sender,), sender), []


def _pool(spec: SenderSpec, available: AccountSenders) -> tuple[Candidates | None, list[Problem]]:
    pool_id = spec.sender_pool_id
    if available.pool is None:
        message = f"Sender pool '{pool_id}' is not a pool of this account"
        return None, [_sender_problem(message, "$.from.senderPoolId")]
    active = [
        s
        for s in available.pool
        if s.status == SenderStatus.ACTIVATED
        and (not spec.filter_in or s.channel.value in spec.filter_in)
    ]
    best = _best_per_channel(active)
    # Lower priority values first (the spec: 0 is the highest priority); channels it does
    # not list come after, in the default order.
    unlisted = max(spec.priority.values(), default=0) + 1
    best.sort(key=lambda s: (spec.priority.get(s.channel.value, unlisted), _RANK[s.channel]))
    chosen = tuple(shown(s, pool_id) for s in best)
    first = chosen[0] if chosen else _nobody(pool_id)
    return Candidates(chosen, first), []


def _best_per_channel(senders: Any) -> list[SenderRecord]:
    """One sender per channel (the oldest declared id wins ties), richest channel first."""
    best: dict[ChannelType, SenderRecord] = {}
    for sender in sorted(senders, key=lambda s: s.id):
        best.setdefault(sender.channel, sender)
    return sorted(best.values(), key=lambda s: _RANK[s.channel])


def _nobody(pool_id: str | None = None) -> Sender:
    """The `from` of a message no sender reaches when there is no sender at all to show."""
    return Sender("", ChannelType.SMS.value, derived_id(SENDER_PREFIX, "none"), pool_id)


@dataclass(frozen=True, slots=True)
class Step:
    """One try: this sender to the recipient's address number `to_index`."""

    sender: Sender
    to_index: int

    def as_json(self) -> list[Any]:
        s = self.sender
        return [s.sender_id, s.route, s.channel, s.address, self.to_index]


@dataclass(frozen=True, slots=True)
class Plan:
    """Every try for one recipient, in order (the fallback order)."""

    steps: tuple[Step, ...]

    @property
    def first(self) -> Sender:
        return self.steps[0].sender

    def as_json(self) -> list[list[Any]]:
        return [step.as_json() for step in self.steps]


def step_of(item: Sequence[Any], pool_id: str | None) -> Step:
    """A stored plan step back in domain terms (see Step.as_json)."""
    sender_id, route, channel, address, to_index = item
    return Step(Sender(address, channel, sender_id, pool_id, route), to_index)


def plan(chosen: Candidates, addresses: Sequence[Address]) -> Plan | None:
    """The recipient's plan; None when no candidate reaches any of its addresses."""
    steps = tuple(
        Step(sender, index)
        for sender in chosen.senders
        for index, to in enumerate(addresses)
        if to.channel in REACHES[ChannelType(sender.channel)]
    )
    return Plan(steps) if steps else None


class Planner:
    """Plans for a send's recipients, worked out once per shape of recipient.

    Routing depends on the candidates and on the channels of a recipient's addresses, never
    on the addresses themselves, so 10,000 recipients share a handful of plan objects (and
    their stored JSON is serialized once per shape).
    """

    def __init__(self, chosen: Candidates) -> None:
        self.chosen = chosen
        self._memo: dict[str | tuple[str, ...], Plan | None] = {}

    def __call__(self, addresses: Sequence[Address]) -> Plan | None:
        # One address, nearly always: its channel alone is the key (others' are tuples).
        key = addresses[0].channel if len(addresses) == 1 else tuple(a.channel for a in addresses)
        if key not in self._memo:
            self._memo[key] = plan(self.chosen, addresses)
        return self._memo[key]
