"""The Emails resource on the wire: the spec's Email, EmailMetadata and EmailOperation."""

from typing import Any

from pydantic import Field

from opencomms.api.wire import Pagination, Related, Wire


class EmailMetadata(Wire):
    id: str
    from_: dict[str, str] = Field(alias="from")  # the spec's EmailAddress: address, name
    to: list[dict[str, str]]
    status: str
    related: list[Related]
    tags: dict[str, str]
    scheduled_for: str | None
    created_at: str
    updated_at: str
    deleted_at: str | None


class Email(EmailMetadata):
    content: dict[str, Any]


class EmailList(Wire):
    emails: list[EmailMetadata]
    pagination: Pagination


class EmailOperationStats(Wire):
    total: int
    recipients: int
    attempts: int
    queued: int
    sent: int
    scheduled: int
    delivered: int
    opened: int
    undelivered: int
    failed: int
    canceled: int


class EmailOperation(Wire):
    id: str
    status: str
    stats: EmailOperationStats
    created_at: str
    updated_at: str


class EmailOperationList(Wire):
    operations: list[EmailOperation]
    pagination: Pagination


class AcceptedResource(Wire):
    resource_id: str
    resource_location: str
