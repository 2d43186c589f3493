"""The wire format: request JSON to domain commands, domain rows to camelCase responses."""

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from opencomms.domain.routing import Address, sender_spec
from opencomms.domain.send import Recipient, SendCommand


def normalize_enums(body: dict[str, Any]) -> None:
    """Upper-cases channel enums in place: Twilio's guides write them in lower case (decision 4)."""
    for recipient in body.get("to") or []:
        if isinstance(recipient, dict):
            _upper(recipient, "channel")
            for address in recipient.get("addresses") or []:
                if isinstance(address, dict):
                    _upper(address, "channel")
    sender = body.get("from")
    if isinstance(sender, dict):
        _upper(sender, "channel")
        control = sender.get("channels")
        if isinstance(control, dict):
            filter_in = control.get("filterIn")
            if isinstance(filter_in, list):
                control["filterIn"] = [c.upper() if isinstance(c, str) else c for c in filter_in]
            for item in control.get("priority") or []:
                if isinstance(item, dict):
                    _upper(item, "channel")


def _upper(item: dict[str, Any], key: str) -> None:
    value = item.get(key)
    if isinstance(value, str) and not value.isupper():
        item[key] = value.upper()


def _recipient(item: dict[str, Any]) -> Recipient:
    variables = item.get("variables") or {}
    if "addresses" in item:
        addresses = [Address(a["address"], a["channel"]) for a in item["addresses"]]
        return Recipient(addresses, variables=variables, connected=True)
    if "address" in item:
        return Recipient([Address(item["address"], item["channel"])], variables=variables)
    return Recipient([], item["profileId"], item["memoryStoreId"], variables)


_RECIPIENT_PATH = re.compile(r"^\$\.to\[(\d+)\]")
_TOP_PATH = re.compile(r"^\$\.(\w+)")


def _refused_parts(invalid: frozenset[str]) -> tuple[set[str], set[int]]:
    """The top-level fields and the recipients that the schema check refused."""
    fields: set[str] = set()
    recipients: set[int] = set()
    for path in invalid:
        if (match := _RECIPIENT_PATH.match(path)) is not None:
            recipients.add(int(match.group(1)))
        elif (match := _TOP_PATH.match(path)) is not None:
            fields.add(match.group(1))
    return fields, recipients


def send_command(body: dict[str, Any], invalid: frozenset[str] = frozenset()) -> SendCommand:
    """A SendMessages body as a domain command.

    `invalid` holds the JSON paths the schema check already refused; those parts are left
    out (a refused recipient becomes a placeholder the domain skips), so the domain checks
    still run on the rest and one answer lists every problem.
    """
    fields, recipients = _refused_parts(invalid)
    schedule = None if "schedule" in fields else body.get("schedule")
    to = body.get("to")
    return SendCommand(
        recipients=[
            Recipient([], skip=True) if i in recipients else _recipient(item)
            for i, item in enumerate(to if isinstance(to, list) else [])
        ],
        content={} if "content" in fields else body["content"],
        sender=None if "from" in fields else sender_spec(body.get("from")),
        tags={} if "tags" in fields else body.get("tags") or {},
        send_at=schedule.get("sendAt") if schedule else None,
    )


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Accepted(Wire):
    operation_id: str
    operation_location: str


class ErrorEntry(Wire):
    code: int
    message: str
    info_url: str
    context: str | None


class ErrorBody(Wire):
    errors: list[ErrorEntry]


class Related(Wire):
    name: Literal["OPERATION", "SESSION", "MESSAGE"]
    id: str
    uri: str


class Pagination(Wire):
    next: str | None
    self_: str = Field(alias="self")


class TwilioErrorNullable(Wire):
    code: int
    message: str
    info_url: str


class Attempt(Wire):
    from_: dict[str, Any] = Field(alias="from")
    to: list[dict[str, Any]]
    status: str
    attempted_at: str
    info_url: str
    error: TwilioErrorNullable | None
    # OpenComms extension (MessageAttempt allows extra properties): the channel's id for
    # this hand-off, for Seek; null until the channel answered.
    identifier: str | None = None


class MessageMetadata(Wire):
    id: str
    from_: dict[str, Any] = Field(alias="from")
    to: list[dict[str, Any]]
    status: str
    related: list[Related]
    tags: dict[str, str]
    scheduled_for: str | None
    created_at: str
    updated_at: str
    deleted_at: str | None


class Message(MessageMetadata):
    content: dict[str, Any]
    attempts: list[Attempt]


class MessageList(Wire):
    messages: list[MessageMetadata]
    pagination: Pagination


class OperationStats(Wire):
    total: int
    recipients: int
    attempts: int
    unaddressable: int
    queued: int
    sent: int
    scheduled: int
    delivered: int
    read: int
    undelivered: int
    failed: int
    canceled: int


class Operation(Wire):
    id: str
    status: str
    stats: OperationStats
    created_at: str
    updated_at: str


class OperationList(Wire):
    operations: list[Operation]
    pagination: Pagination


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json")


_ENUM_FIELDS = frozenset({"channel", "status"})


def upper_enum_fields(value: Any) -> None:
    """Upper-cases, anywhere in a Senders or SenderPools body, the `channel` and `status`
    fields and the `filterIn` lists (decision 4). Those bodies hold no free text under
    these names, unlike a message's content."""
    if isinstance(value, list):
        for item in value:
            upper_enum_fields(item)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key in _ENUM_FIELDS and isinstance(item, str):
            value[key] = item.upper()
        elif key == "filterIn" and isinstance(item, list):
            value[key] = [c.upper() if isinstance(c, str) else c for c in item]
        else:
            upper_enum_fields(item)


class ResourceAccepted(Wire):
    resource_id: str
    resource_location: str


class Sender(Wire):
    id: str
    display_name: str | None
    address: str
    channel: str
    status: str
    tags: dict[str, str]
    created_at: str
    updated_at: str


class SenderList(Wire):
    senders: list[Sender]
    pagination: Pagination


class ResolvedFrom(Wire):
    sender_id: str
    display_name: str | None
    address: str
    channel: str


class ResolvedTo(Wire):
    address: str
    channel: str


class ResolvedPair(Wire):
    from_: ResolvedFrom = Field(alias="from")
    to: ResolvedTo
    priority: int


class ResolveResults(Wire):
    results: list[ResolvedPair]


class SenderPool(Wire):
    id: str
    name: str
    tags: dict[str, str]
    created_at: str
    updated_at: str


class SenderPoolList(Wire):
    sender_pools: list[SenderPool]
    pagination: Pagination


class SenderPoolOperationStats(Wire):
    total: int
    queued: int
    created: int
    failed: int


class SenderPoolOperation(Wire):
    id: str
    status: str
    stats: SenderPoolOperationStats
    created_at: str
    updated_at: str


class SenderPoolOperationList(Wire):
    operations: list[SenderPoolOperation]
    pagination: Pagination
