"""What a status write changed: the report every fenced write hands to the operation refresh
and to the events outbox, inside the same transaction."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MessageTransition:
    """One message moved from one status to another (`from_status` None: just created)."""

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


@dataclass(frozen=True, slots=True)
class OperationTransition:
    operation_id: str
    account_sid: str
    from_status: str | None
    to_status: str


Transition = MessageTransition | OperationTransition
