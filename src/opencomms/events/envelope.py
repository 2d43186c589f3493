"""CloudEvents 1.0 JSON envelopes for status transitions."""

from collections.abc import Sequence
from typing import Any, NamedTuple

from orjson import dumps, loads

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


def _head(event_id: str, kind: EventType, source: str, subject: str, time: str) -> str:
    """The envelope as JSON text up to `"data":` (ids and types need no escaping: checked)."""
    return (
        f'{{"specversion":"{SPEC_VERSION}","id":"{event_id}","type":"{kind.type}",'
        f'"source":{source},"subject":{subject},"time":"{time}",'
        f'"datacontenttype":"application/json","dataschema":"{schema_path(kind.schema_id)}",'
        '"data":'
    )


def message_texts(
    t: MessageTransition,
    steps: Sequence[tuple[EventType, int, str]],
    event_ids: Sequence[str],
    time: str,
) -> list[str]:
    """The JSON text of a message transition's events, one per (type, sequence, status)
    step: the same as `dumps(envelope(..., message_data(...)))`, written as text with the
    parts every step shares serialized once (the outbox's cost is mostly this, per event)."""
    subject = dumps(t.message_id).decode()
    source = dumps(f"/v1/Messages/{t.message_id}").decode()
    ids_part = dumps(
        {"operation_id": t.operation_id, "message_id": t.message_id, "account_sid": t.account_sid}
    ).decode()[:-1]
    parties = dumps(
        {
            "from": _party(t.sender, t.channel),
            "to": _party(t.recipient, t.channel),
            "tags": t.tags,
        }
    ).decode()[1:-1]
    downstream = dumps(t.downstream_id).decode()
    error = dumps([t.error_code, t.error_message]).decode()[1:-1].split(",", 1)
    texts = []
    for (kind, seq, status), event_id in zip(steps, event_ids, strict=True):
        code, why = error if status == t.to_status else ("null", "null")
        texts.append(
            f'{_head(event_id, kind, source, subject, time)}{ids_part},"status":"{status}",'
            f'"attempt":{int(t.attempt)},"downstream_id":{downstream},"error_code":{code},'
            f'"error_message":{why},{parties},"sequence":{seq}}}}}'
        )
    return texts


def party_text(value: dict[str, Any] | None, channel: str | None) -> str:
    return dumps(_party(value, channel)).decode()


class AcceptFacts(NamedTuple):
    """What the accept-time events of messages that share them say alike (JSON texts where
    marked): one send's chunk of messages (store/sends.py) has one of these."""

    account_sid: str
    operation_id: str
    status: str
    tags: str  # JSON
    error_code: int | None
    error_message: str | None
    sender: str  # the `from` party, JSON


def accepted_text(
    event_id: str,
    kind: EventType,
    seq: int,
    message_id: str,
    facts: AcceptFacts,
    recipient: str,
    time: str,
) -> str:
    """A message's first event, at accept: `message_texts`' text for a transition from
    nothing to the accept's status (attempt 0, no downstream id yet). `recipient` is the
    `to` party as JSON."""
    source, subject = f'"/v1/Messages/{message_id}"', f'"{message_id}"'
    code, why = dumps([facts.error_code, facts.error_message]).decode()[1:-1].split(",", 1)
    return (
        f"{_head(event_id, kind, source, subject, time)}"
        f'{{"operation_id":"{facts.operation_id}","message_id":"{message_id}",'
        f'"account_sid":"{facts.account_sid}","status":"{facts.status}","attempt":0,'
        f'"downstream_id":null,"error_code":{code},"error_message":{why},'
        f'"from":{facts.sender},"to":{recipient},"tags":{facts.tags},"sequence":{seq}}}}}'
    )


# Where an event template (store/tables.event_templates) takes the event's own values. JSON
# text never holds a raw control character (it is escaped), so these cannot occur otherwise.
_MARK_ID, _MARK_SUBJECT, _MARK_TO = "\x01i", "\x01s", "\x01t"


def accepted_template(kind: EventType, seq: int, facts: AcceptFacts, time: str) -> str:
    """`accepted_text` with the event id, the message id and the recipient left open."""
    return accepted_text(_MARK_ID, kind, seq, _MARK_SUBJECT, facts, _MARK_TO, time)


def fill(
    template: str, event_id: str, message_id: str, recipient: str | None, channel: str | None
) -> str:
    """An event's text from its template: `accepted_text` for this event and message, with
    the message's recipient (its stored JSON) as the `to` party."""
    to = party_text(loads(recipient) if recipient is not None else None, channel)
    filled = template.replace(_MARK_ID, event_id).replace(_MARK_SUBJECT, message_id)
    return filled.replace(_MARK_TO, to)
