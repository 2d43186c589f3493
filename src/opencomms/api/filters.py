"""Query parameters of the list endpoints, parsed with errors that name the parameter."""

import re
from datetime import datetime

from opencomms import ids

# Re-exported: GET /Messages reads `filters.page_size`.
from opencomms.api.pagination import page_size as page_size  # noqa: PLC0414
from opencomms.clock import to_ms
from opencomms.domain import errors
from opencomms.domain.channels import ChannelType
from opencomms.domain.errors import Problem, ValidationFailed
from opencomms.domain.records import MessageFilter, OperationFilter, SenderFilter
from opencomms.domain.sender_pools import PoolFilter
from opencomms.domain.senders import SenderStatus
from opencomms.domain.status import MessageStatus, OperationStatus
from opencomms.store.sandbox import SandboxFilter

_TAGS = re.compile(r"^(?:[a-zA-Z0-9._~-]+:[a-zA-Z0-9._~-]+;){1,10}$")
_OPERATION_ID = re.compile(r"^comms_operation_[0-7][a-hjkmnpqrstv-z0-9]{25,34}")
_SESSION_ID = re.compile(r"^comms_session_[a-hjkmnpqrstv-z0-9]{26,34}")
_PROFILE_ID = re.compile(r"^mem_profile_[0-7][a-hjkmnpqrstv-z0-9]{25,34}")
# The message channels of the spec (EMAIL senders come with the Emails issue).
_CHANNELS = tuple(c.value for c in (ChannelType.SMS, ChannelType.RCS, ChannelType.WHATSAPP))
_MESSAGE_STATUSES = (*(s.value for s in MessageStatus), "GROUP")
# What the filters accept, for forms that offer them (the console's).
CHANNELS = _CHANNELS
MESSAGE_STATUSES = _MESSAGE_STATUSES
# The spec's SenderCommunicationChannel: PUSH is valid and matches no sender OpenComms has.
_SENDER_CHANNELS = ("SMS", "RCS", "EMAIL", "WHATSAPP", "PUSH")
_SENDER_STATUSES = tuple(s.value for s in SenderStatus)
# The spec's OperationStatus for SenderPool operations (no SCHEDULED).
_POOL_OPERATION_STATUSES = ("PROCESSING", "COMPLETED", "CANCELED")


class _Parser:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, name: str, message: str) -> None:
        self.problems.append(Problem(errors.INVALID_PARAMETER, message, f"$.{name}"))

    def date(self, name: str, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail(name, f"{name} must be an RFC 3339 date-time")
            return None
        if moment.tzinfo is None:
            self.fail(name, f"{name} needs a time-zone offset, e.g. 2025-06-18T12:00:00Z")
            return None
        return to_ms(moment)

    def pattern(self, name: str, value: str | None, pattern: re.Pattern[str]) -> str | None:
        if value is not None and not pattern.match(value):
            self.fail(name, f"{name} '{value}' is not well-formed")
            return None
        return value

    def choice(self, name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
        if value is None:
            return None
        if value.upper() not in allowed:
            self.fail(name, f"{name} must be one of {', '.join(allowed)}")
            return None
        return value.upper()

    def dates(
        self, start: str | None, end: str | None, *, ordered: bool = True
    ) -> tuple[int | None, int | None]:
        """Both dates; with `ordered`, an endDate before startDate is refused. An equal pair
        is an empty window, not an error (schemathesis holds it valid, and so do we)."""
        start_ms, end_ms = self.date("startDate", start), self.date("endDate", end)
        if ordered and start_ms is not None and end_ms is not None and end_ms < start_ms:
            self.fail("endDate", "endDate must not be earlier than startDate")
        return start_ms, end_ms

    def done(self) -> None:
        if self.problems:
            raise ValidationFailed(self.problems)


def _tags(parser: _Parser, value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    if not _TAGS.match(value):
        parser.fail("tags", "tags must look like key:value;key2:value2; (at most 10)")
        return {}
    pairs = (item.split(":", 1) for item in value.split(";") if item)
    return {key: val for key, val in pairs}


def message_filter(
    *,
    operation_id: str | None,
    session_id: str | None,
    start: str | None,
    end: str | None,
    profile: str | None,
    channel: str | None,
    status: str | None,
    tags: str | None,
) -> MessageFilter:
    parser = _Parser()
    start_ms, end_ms = parser.dates(start, end)
    result = MessageFilter(
        operation_id=parser.pattern("operationId", operation_id, _OPERATION_ID),
        session_id=parser.pattern("sessionId", session_id, _SESSION_ID),
        start=start_ms,
        end=end_ms,
        profile_id=parser.pattern("profile", profile, _PROFILE_ID),
        channel=parser.choice("channel", channel, _CHANNELS),
        status=parser.choice("status", status, _MESSAGE_STATUSES),
        tags=_tags(parser, tags),
    )
    parser.done()
    return result


def operation_filter(start: str | None, end: str | None, status: str | None) -> OperationFilter:
    parser = _Parser()
    # The Operations list states no order between the two: any pair is a (maybe empty) window.
    start_ms, end_ms = parser.dates(start, end, ordered=False)
    statuses = tuple(s.value for s in OperationStatus)
    result = OperationFilter(start_ms, end_ms, parser.choice("status", status, statuses))
    parser.done()
    return result


def sandbox_filter(
    *, to: str | None, operation_id: str | None, channel: str | None
) -> SandboxFilter:
    """The sandbox inbox's filters (`to` is an address as the message was sent to it)."""
    parser = _Parser()
    if to is not None and not 1 <= len(to) <= 320:
        parser.fail("to", "to must be an address of 1 to 320 characters")
    result = SandboxFilter(
        to=to,
        operation_id=parser.pattern("operationId", operation_id, _OPERATION_ID),
        channel=parser.choice("channel", channel, _CHANNELS),
    )
    parser.done()
    return result


def sender_filter(
    channel: str | None, status: str | None, start: str | None, end: str | None
) -> SenderFilter:
    parser = _Parser()
    start_ms, end_ms = parser.dates(start, end)
    result = SenderFilter(
        channel=parser.choice("channel", channel, _SENDER_CHANNELS),
        status=parser.choice("status", status, _SENDER_STATUSES),
        start=start_ms,
        end=end_ms,
    )
    parser.done()
    return result


def pool_filter(start: str | None, end: str | None, operation_id: str | None) -> PoolFilter:
    parser = _Parser()
    start_ms, end_ms = parser.dates(start, end)
    if operation_id is not None and not ids.is_well_formed(operation_id, ids.OPERATION_PREFIX):
        parser.fail("operationId", f"operationId '{operation_id}' is not well-formed")
        operation_id = None
    result = PoolFilter(start_ms, end_ms, operation_id)
    parser.done()
    return result


def pool_operation_filter(
    start: str | None, end: str | None, status: str | None
) -> OperationFilter:
    parser = _Parser()
    start_ms, end_ms = parser.dates(start, end)
    chosen = parser.choice("status", status, _POOL_OPERATION_STATUSES)
    result = OperationFilter(start_ms, end_ms, chosen)
    parser.done()
    return result


_EMAIL_STATUSES = (
    *(s.value for s in MessageStatus if s != MessageStatus.READ),
    "OPENED",
    "INBOUND",
)


def email_filter(
    *,
    operation_id: str | None,
    start: str | None,
    end: str | None,
    status: str | None,
    tags: str | None,
) -> MessageFilter:
    """ListEmails' filters; OPENED is what the store calls READ."""
    parser = _Parser()
    start_ms, end_ms = parser.dates(start, end)
    chosen = parser.choice("status", status, _EMAIL_STATUSES)
    result = MessageFilter(
        operation_id=parser.pattern("operationId", operation_id, _OPERATION_ID),
        start=start_ms,
        end=end_ms,
        status=MessageStatus.READ.value if chosen == "OPENED" else chosen,
        tags=_tags(parser, tags),
    )
    parser.done()
    return result
