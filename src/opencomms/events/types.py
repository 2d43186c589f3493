"""The event types OpenComms publishes, their schemas, and which status change makes which."""

from dataclasses import dataclass
from typing import Any

from opencomms.domain.status import MessageStatus, OperationStatus

PREFIX = "com.twilio.comms-api"
SCHEMA_VERSION = 1
# Types and schemas were published with the first release of events; the API shows this date.
PUBLISHED_AT = 1_796_169_600_000  # 2026-12-01T00:00:00Z
TEST_EVENT = "com.twilio.eventstreams.test-event"

MESSAGE_SCHEMA = "CommsApi.MessageStatus"
OPERATION_SCHEMA = "CommsApi.OperationStatus"
INBOUND_SCHEMA = "CommsApi.InboundMessage"


@dataclass(frozen=True, slots=True)
class EventType:
    type: str
    schema_id: str
    description: str


def _message(name: str, description: str) -> EventType:
    return EventType(f"{PREFIX}.message.{name}", MESSAGE_SCHEMA, description)


def _operation(name: str, description: str) -> EventType:
    return EventType(f"{PREFIX}.operation.{name}", OPERATION_SCHEMA, description)


MESSAGE_TYPES: dict[str, EventType] = {
    MessageStatus.QUEUED: _message("queued", "Comms API - message queued for sending"),
    MessageStatus.SENT: _message("sent", "Comms API - message handed to a channel"),
    MessageStatus.DELIVERED: _message("delivered", "Comms API - message delivered"),
    MessageStatus.UNDELIVERED: _message("undelivered", "Comms API - message not delivered"),
    MessageStatus.FAILED: _message("failed", "Comms API - message failed"),
    MessageStatus.READ: _message("read", "Comms API - message read"),
    MessageStatus.CANCELED: _message("canceled", "Comms API - message canceled"),
}
INBOUND_TYPE = EventType(
    f"{PREFIX}.message.inbound-received", INBOUND_SCHEMA, "Comms API - inbound message received"
)
# A canceled operation is complete too: its event says which way in `data.status`.
OPERATION_TYPES: dict[str, EventType] = {
    OperationStatus.SCHEDULED: _operation("scheduled", "Comms API - operation scheduled"),
    OperationStatus.PROCESSING: _operation("processing", "Comms API - operation processing"),
    OperationStatus.COMPLETED: _operation("completed", "Comms API - operation completed"),
    OperationStatus.CANCELED: _operation("completed", "Comms API - operation completed"),
}

ALL_TYPES: dict[str, EventType] = {
    t.type: t for t in [*OPERATION_TYPES.values(), *MESSAGE_TYPES.values(), INBOUND_TYPE]
}

# The order of a message's events: a status only moves forward (domain/status.RANK), so its
# step along the lifecycle numbers its events. Gaps are normal (a scheduled message has no
# event before QUEUED; a failure at the first hand-off skips SENT).
MESSAGE_SEQUENCE: dict[str, int] = {
    MessageStatus.QUEUED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.CANCELED: 3,
    MessageStatus.READ: 4,
}
OPERATION_SEQUENCE: dict[str, int] = {
    OperationStatus.SCHEDULED: 1,
    OperationStatus.PROCESSING: 2,
    OperationStatus.COMPLETED: 3,
    OperationStatus.CANCELED: 3,
}

_NULLABLE_STRING = {"type": ["string", "null"]}
_PARTY = {
    "type": ["object", "null"],
    "required": ["id", "address", "channel"],
    "properties": {
        "id": _NULLABLE_STRING,
        "address": _NULLABLE_STRING,
        "channel": _NULLABLE_STRING,
    },
    "additionalProperties": False,
}


def _schema(schema_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"/v1/Schemas/{schema_id}/Versions/{SCHEMA_VERSION}/Raw",
        "title": schema_id,
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    MESSAGE_SCHEMA: _schema(
        MESSAGE_SCHEMA,
        {
            "operation_id": {"type": "string"},
            "message_id": {"type": "string"},
            "account_sid": {"type": "string", "pattern": "^AC[0-9a-fA-F]{32}$"},
            "status": {"enum": [str(s) for s in MESSAGE_TYPES]},
            "attempt": {"type": "integer", "minimum": 0},
            "downstream_id": _NULLABLE_STRING,
            "error_code": {"type": ["integer", "null"]},
            "error_message": _NULLABLE_STRING,
            "from": _PARTY,
            "to": _PARTY,
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "sequence": {"type": "integer", "minimum": 1},
        },
    ),
    OPERATION_SCHEMA: _schema(
        OPERATION_SCHEMA,
        {
            "operation_id": {"type": "string"},
            "account_sid": {"type": "string", "pattern": "^AC[0-9a-fA-F]{32}$"},
            "status": {"enum": [str(s) for s in OperationStatus]},
            "sequence": {"type": "integer", "minimum": 1},
        },
    ),
    INBOUND_SCHEMA: _schema(
        INBOUND_SCHEMA,
        {
            "message_id": {"type": "string"},
            "account_sid": {"type": "string", "pattern": "^AC[0-9a-fA-F]{32}$"},
            "from": _PARTY,
            "to": _PARTY,
            "content": {"type": "object"},
            "sequence": {"type": "integer", "minimum": 1},
        },
    ),
}
