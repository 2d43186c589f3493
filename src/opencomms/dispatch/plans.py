"""What dispatch needs of an operation, prepared once and cached across batches."""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from opencomms.dispatch.render import ContentTemplate
from opencomms.domain.routing import (
    Address,
    Route,
    Sender,
    SenderSpec,
    plan_routes,
    sender_spec,
)
from opencomms.store.codec import dumps

_CACHE_SIZE = 256


def addresses(recipient: dict[str, Any]) -> list[Address]:
    """A message's stored recipient as the addresses routing may try, in order."""
    if "addresses" in recipient:
        return [Address(a["address"], a["channel"]) for a in recipient["addresses"]]
    if "address" in recipient:
        return [Address(recipient["address"], recipient["channel"])]
    return []  # a profile: not addressable until profiles resolve to addresses


@dataclass
class OperationPlan:
    content: ContentTemplate
    sender: SenderSpec | None
    _shapes: dict[tuple[str, ...], list[tuple[Sender, int]]] = field(default_factory=dict)
    _sender_json: dict[Sender, str] = field(default_factory=dict)

    def routes(self, recipient: dict[str, Any]) -> list[Route]:
        """The fallback order: every route tried for this recipient, first to last.

        Routing looks at an address's channel only, never at the address itself, so the plan
        is worked out once per shape of recipient (the channels of its addresses) and only
        the addresses are filled in per message: one plan, not one per recipient.
        """
        targets = addresses(recipient)
        shape = tuple(a.channel for a in targets)
        if shape not in self._shapes:
            stand_ins = [Address(str(i), channel) for i, channel in enumerate(shape)]
            planned = plan_routes(self.sender, stand_ins)
            self._shapes[shape] = [(r.sender, int(r.to.address)) for r in planned]
        return [Route(sender, targets[index]) for sender, index in self._shapes[shape]]

    def sender_json(self, sender: Sender) -> str:
        """The `from` JSON of a sender, serialized once per operation."""
        if sender not in self._sender_json:
            self._sender_json[sender] = dumps(sender.as_json())
        return self._sender_json[sender]


@dataclass
class PlanCache:
    """Keeps the plans of recently dispatched operations (a send's batches share one)."""

    size: int = _CACHE_SIZE
    _plans: OrderedDict[str, OperationPlan] = field(default_factory=OrderedDict)

    def missing(self, operation_ids: set[str]) -> set[str]:
        return {op for op in operation_ids if op not in self._plans}

    def add(
        self, operation_id: str, content: dict[str, Any], sender: dict[str, Any] | None
    ) -> None:
        self._plans[operation_id] = OperationPlan(ContentTemplate(content), sender_spec(sender))
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)

    def get(self, operation_id: str) -> OperationPlan:
        self._plans.move_to_end(operation_id)
        return self._plans[operation_id]
