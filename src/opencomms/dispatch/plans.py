"""What dispatch needs of an operation and of a message's stored plan, prepared once and
cached across batches."""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from opencomms.dispatch.render import ContentTemplate
from opencomms.domain.records import OperationKind
from opencomms.domain.routing import Address, Sender, Step, sender_spec, step_of
from opencomms.domain.send import MAX_TEXT
from opencomms.store.codec import dumps, loads

_CACHE_SIZE = 256


def addresses(recipient: dict[str, Any]) -> list[Address]:
    """A message's stored recipient as the addresses its plan indexes, in order."""
    if "addresses" in recipient:
        return [Address(a["address"], a["channel"]) for a in recipient["addresses"]]
    if "address" in recipient:
        return [Address(recipient["address"], recipient["channel"])]
    return []  # a profile: not addressable until profiles resolve to addresses


@dataclass
class OperationPlan:
    content: ContentTemplate
    pool_id: str | None  # shown in every `from` when the send named a pool
    _steps: dict[str, tuple[Step, ...]] = field(default_factory=dict)
    _sender_json: dict[Sender, str] = field(default_factory=dict)

    def steps(self, plan: str | None) -> tuple[Step, ...]:
        """The fallback order decided at accept time (messages.plan), parsed once per
        distinct plan: recipients of one shape share the same text."""
        if plan is None:
            return ()
        found = self._steps.get(plan)
        if found is None:
            found = self._steps[plan] = tuple(step_of(s, self.pool_id) for s in loads(plan))
        return found

    def sender_json(self, sender: Sender) -> str:
        """The `from` JSON of a sender, serialized once per operation."""
        if sender not in self._sender_json:
            self._sender_json[sender] = dumps(sender.as_json())
        return self._sender_json[sender]


def build_plan(
    content: dict[str, Any], sender: dict[str, Any] | None, kind: str = OperationKind.MESSAGES
) -> OperationPlan:
    """An operation's plan, its templates parsed (which can take a while: off the loop)."""
    spec = sender_spec(sender)
    pool = spec.sender_pool_id if spec is not None and not spec.sender_id else None
    # The SMS text limit is a message's; an email's text may be as long as a letter.
    limit = MAX_TEXT if kind == OperationKind.MESSAGES else None
    return OperationPlan(ContentTemplate(content, limit), pool)


@dataclass
class PlanCache:
    """Keeps the plans of recently dispatched operations (a send's batches share one)."""

    size: int = _CACHE_SIZE
    _plans: OrderedDict[str, OperationPlan] = field(default_factory=OrderedDict)

    def cached(self, operation_ids: set[str]) -> dict[str, OperationPlan]:
        """The plans of these operations that are kept here (each marked recently used)."""
        found = {}
        for operation_id in operation_ids:
            plan = self._plans.get(operation_id)
            if plan is not None:
                self._plans.move_to_end(operation_id)
                found[operation_id] = plan
        return found

    def put(self, operation_id: str, plan: OperationPlan) -> None:
        self._plans[operation_id] = plan
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)
