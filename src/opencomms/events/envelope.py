"""CloudEvents 1.0 JSON envelopes for status transitions."""

from typing import Any

from opencomms.clock import rfc3339
from opencomms.domain.transitions import MessageTransition, OperationTransition
from opencomms.events import types
from opencomms.events.types import EventType

SPEC_VERSION = "1.0"
# Stored relative: the delivering worker prefixes its public URL (see delivery.absolute_schema).
SCHEMA_PATH = "/v1/Schemas/{schema_id}/Versions/{version}/Raw"


def schema_path(schema_id: str) -> str:
    return SCHEMA_PATH.format(schema_id=schema_id, version=types.SCHEMA_VERSION)


def envelope(
    event_id: str, kind: EventType, source: str, subject: str, time: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "type": kind.type,
        "source": source,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "dataschema": schema_path(kind.schema_id),
        "data": data,
    }


def _party(value: dict[str, Any] | None, channel: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "id": value.get("id") or value.get("senderId"),
        "address": value.get("address"),
        "channel": channel or value.get("channel"),
    }


def message_data(
    t: MessageTransition, sequence: int, status: str | None = None, final: bool = True
) -> dict[str, Any]:
    """`status`: the step described (a status passed on the way to `t.to_status` carries
    no error: the error belongs to where the message ended)."""
    return {
        "operation_id": t.operation_id,
        "message_id": t.message_id,
        "account_sid": t.account_sid,
        "status": status or t.to_status,
        "attempt": t.attempt,
        "downstream_id": t.downstream_id,
        "error_code": t.error_code if final else None,
        "error_message": t.error_message if final else None,
        "from": _party(t.sender, t.channel),
        "to": _party(t.recipient, t.channel),
        "tags": dict(t.tags),
        "sequence": sequence,
    }


def inbound_data(t: MessageTransition, sequence: int) -> dict[str, Any]:
    """An INBOUND message: `from` is the phone that wrote, `to` our sender."""
    return {
        "message_id": t.message_id,
        "account_sid": t.account_sid,
        "from": _party(t.sender, None),
        "to": _party(t.recipient, None),
        "content": dict(t.content or {}),
        "sequence": sequence,
    }


def operation_data(t: OperationTransition, sequence: int) -> dict[str, Any]:
    return {
        "operation_id": t.operation_id,
        "account_sid": t.account_sid,
        "status": t.to_status,
        "sequence": sequence,
    }


def test_event(event_id: str, sink_sid: str, now: int) -> dict[str, Any]:
    """The event a sink's Test sends; its id is what Validate expects back."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "type": types.TEST_EVENT,
        "source": f"/v1/Sinks/{sink_sid}/Test",
        "subject": sink_sid,
        "time": rfc3339(now),
        "datacontenttype": "application/json",
        "data": {"test_id": event_id, "sink_sid": sink_sid},
    }
