"""What the store hands to the rest of the application: plain snake_case records."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    number: int
    channel: str
    sender: dict[str, Any]
    recipient: list[dict[str, Any]]  # the attempt's `to`, as the spec shapes it
    status: str
    attempted_at: int
    error_code: int | None
    error_message: str | None
    external_id: str | None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: str
    operation_id: str
    status: str
    recipient: dict[str, Any]
    variables: dict[str, str]
    tags: dict[str, str]
    send_at: int | None
    unaddressable: bool
    channel: str | None
    sender: dict[str, Any] | None
    content: dict[str, Any] | None
    error_code: int | None
    error_message: str | None
    created_at: int
    updated_at: int
    deleted_at: int | None
    # The conversation it belongs to (domain/sessions.py); set on inbound messages.
    session_id: str | None = None

    @property
    def inbound(self) -> bool:
        return self.status == "INBOUND"


@dataclass(frozen=True, slots=True)
class OperationRecord:
    id: str
    status: str
    content: dict[str, Any]
    sender: dict[str, Any] | None
    send_at: int | None
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class OperationStats:
    """Counts derived from message rows; never stored, so they cannot drift."""

    total: int = 0
    recipients: int = 0
    attempts: int = 0
    unaddressable: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return self.by_status.get(status, 0)


@dataclass(frozen=True)
class MessageFilter:
    operation_id: str | None = None
    session_id: str | None = None
    start: int | None = None
    end: int | None = None
    profile_id: str | None = None
    channel: str | None = None
    status: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OperationFilter:
    start: int | None = None
    end: int | None = None
    status: str | None = None


@dataclass(frozen=True)
class SenderFilter:
    channel: str | None = None
    status: str | None = None
    start: int | None = None
    end: int | None = None
    address: str | None = None  # exact match (Search Senders)
