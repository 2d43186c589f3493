"""What a status write changed: the report every fenced write hands to the operation refresh
and to the events outbox, inside the same transaction."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MessageTransition:
    """One message moved from one status to another (`from_status` None: just created).

    `via` lists the statuses it passed on the way when one write folded several steps (a
    hand-off whose receipts arrived before its result was written: QUEUED to DELIVERED via
    SENT); each is an event of its own, but the counters only see `from_status` and
    `to_status`."""

    message_id: str
    operation_id: str
    account_sid: str
    from_status: str | None
    to_status: str
    attempt: int = 0
    error_code: int | None = None
    error_message: str | None = None
    downstream_id: str | None = None  # the channel's identifier for the hand-off
    channel: str | None = None
    sender: dict[str, Any] | None = None  # MessageSender as stored
    recipient: dict[str, Any] | None = None  # the `to` item as stored
    tags: dict[str, str] = field(default_factory=dict)
    via: tuple[str, ...] = ()
    unaddressable: bool = False  # failed at accept: counted apart from dispatched failures
    content: dict[str, Any] | None = None  # an INBOUND message's content (its event carries it)


@dataclass(frozen=True, slots=True)
class OperationTransition:
    operation_id: str
    account_sid: str
    from_status: str | None
    to_status: str


Transition = MessageTransition | OperationTransition


@dataclass(slots=True)
class StatusChanges:
    """Everything one transaction's fenced writes changed: the one object the operation
    counters and status (store/operation_status.apply) and the outbox (events.outbox.emit)
    both consume before the transaction commits (store/changes.settle runs both)."""

    messages: list[MessageTransition] = field(default_factory=list)
    operations: list[OperationTransition] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)  # attempt rows added, by operation

    def add(self, transitions: list[MessageTransition]) -> None:
        self.messages.extend(transitions)

    def started(self, operation_id: str, count: int = 1) -> None:
        self.attempts[operation_id] += count

    def __bool__(self) -> bool:
        return bool(self.messages or self.operations or self.attempts)

    def all(self) -> list[Transition]:
        return [*self.messages, *self.operations]
