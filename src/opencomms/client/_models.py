"""Typed models of the API's resources, as the server sends them (camelCase on the wire).

Models keep fields they do not declare (`extra="allow"`): a newer server may add extension
fields, and an older SDK must still parse its answers. `to_dict()` gives back the wire form.
"""

import copy
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic.alias_generators import to_camel


class MessageStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    UNDELIVERED = "UNDELIVERED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    GROUP = "GROUP"
    INBOUND = "INBOUND"


class OperationStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


# A message in one of these will not change status again (except DELIVERED -> READ, which a
# caller waiting for "done" does not wait for).
FINAL_MESSAGE_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.READ,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.CANCELED,
        MessageStatus.INBOUND,
    }
)
FINAL_OPERATION_STATUSES = frozenset({OperationStatus.COMPLETED, OperationStatus.CANCELED})


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )
    # The JSON object an answer was read from (see `from_wire`): `to_dict()` gives it back
    # exactly, times as the server wrote them, rather than a re-serialization.
    _wire: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        model = cls.model_validate(data)
        if isinstance(data, dict):
            model._wire = data
        return model

    def to_dict(self) -> dict[str, Any]:
        """The resource in its wire form (camelCase keys), as the server sent it."""
        if self._wire is not None:
            return copy.deepcopy(self._wire)
        return self.model_dump(by_alias=True, mode="json", exclude_unset=True)


class Address(Model):
    """A party of a message: an address with its channel, and the ids the API attached."""

    address: str | None = None
    channel: str | None = None
    sender_id: str | None = None
    sender_pool_id: str | None = None
    profile_id: str | None = None
    memory_store_id: str | None = None


class Related(Model):
    name: str
    id: str
    uri: str | None = None


class AttemptError(Model):
    code: int
    message: str
    info_url: str | None = None


class Attempt(Model):
    """One hand-off of a message to a channel."""

    from_: Address = Field(alias="from")
    to: list[Address]
    status: str
    attempted_at: datetime
    info_url: str
    error: AttemptError | None = None
    # An OpenComms extension: the channel's id for the hand-off, for `seek_message`.
    identifier: str | None = None


class MessageContent(Model):
    """The content of a message, resolved for its recipient."""

    text: str | None = None
    media: list[dict[str, Any]] | None = None
    content_id: str | None = None


class MessageSummary(Model):
    """A message as lists show it: everything but its content and attempts."""

    id: str
    from_: Address = Field(alias="from")
    to: list[Address]
    status: str
    related: list[Related] = []
    tags: dict[str, str] = {}
    scheduled_for: datetime | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def _related(self, name: str) -> str | None:
        return next((r.id for r in self.related if r.name == name), None)

    @property
    def operation_id(self) -> str | None:
        return self._related("OPERATION")

    @property
    def session_id(self) -> str | None:
        return self._related("SESSION")

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_MESSAGE_STATUSES


class Message(MessageSummary):
    """A message with its rendered content and every delivery attempt."""

    content: MessageContent
    attempts: list[Attempt] = []


class OperationStats(Model):
    total: int
    recipients: int = 0
    attempts: int = 0
    unaddressable: int = 0
    scheduled: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    undelivered: int = 0
    failed: int = 0
    canceled: int = 0

    @property
    def final(self) -> int:
        """Messages that reached a final status; unaddressable ones are final from the start."""
        done = self.delivered + self.read + self.undelivered + self.failed + self.canceled
        return done + self.unaddressable

    def by_status(self) -> dict[str, int]:
        """Message counts by status, in lifecycle order."""
        return {
            status.value: getattr(self, status.value.lower())
            for status in MessageStatus
            if status not in (MessageStatus.GROUP, MessageStatus.INBOUND)
        }


class MessageOperation(Model):
    """The work of one send request, with stats derived from its messages."""

    id: str
    status: str
    stats: OperationStats
    created_at: datetime
    updated_at: datetime

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_OPERATION_STATUSES


class Accepted(Model):
    """The 202 answer of a send or cancel: the operation to follow."""

    operation_id: str
    operation_location: str


class Pagination(Model):
    next: str | None = None
    self_: str | None = Field(default=None, alias="self")


class SandboxMessage(Model):
    """What the sandbox delivered to a phone: one entry per hand-off it took."""

    id: str
    message_id: str
    operation_id: str
    attempt: int
    channel: str
    from_: str = Field(alias="from")
    to: str
    content: MessageContent
    identifier: str | None = None
    delivered_at: datetime

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        # The inbox names parties by address; an address object or a list of one is read too.
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, dict):
            return value.get("address")
        return value


ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    """One page of a list; pass `next_page_token` as `page_token` for the next one."""

    items: list[ItemT]
    next_page_token: str | None
    page_token: str | None

    @property
    def has_next(self) -> bool:
        return self.next_page_token is not None
