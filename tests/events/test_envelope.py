"""The outbox writes message events straight to JSON text; it must say exactly what the
envelope's dicts say (envelope.envelope + message_data), for every step and any error text."""

import orjson
import pytest

from opencomms.domain.transitions import MessageTransition
from opencomms.events import envelope, outbox, types
from opencomms.store import changes, sends

TIME = "2026-12-03T10:20:34.270Z"


def transition(**overrides: object) -> MessageTransition:
    values: dict[str, object] = {
        "message_id": "comms_message_01",
        "operation_id": "comms_operation_01",
        "account_sid": "AC" + "0" * 32,
        "from_status": "QUEUED",
        "to_status": "UNDELIVERED",
        "attempt": 2,
        "error_code": 30003,
        "error_message": 'Unreachable, "quoted", with commas\nand a newline',
        "downstream_id": "SM1",
        "channel": "SMS",
        "sender": {"address": "+15005550006", "channel": "SMS", "senderId": "sender_1"},
        "recipient": {"address": "+14155550100", "channel": "PHONE"},
        "tags": {"campaign": "x", "ünï": "cödé"},
        "via": ("SENT",),
        **overrides,
    }
    return MessageTransition(**values)  # type: ignore[arg-type]


def expected(t: MessageTransition, event_id: str, status: str) -> dict[str, object]:
    seq = types.MESSAGE_SEQUENCE[status]
    data = envelope.message_data(t, seq, status, status == t.to_status)
    kind = types.MESSAGE_TYPES[status]
    source = f"/v1/Messages/{t.message_id}"
    return envelope.envelope(event_id, kind, source, t.message_id, TIME, data)


@pytest.mark.parametrize(
    "t",
    [
        transition(),
        transition(error_code=None, error_message=None, to_status="READ", via=("DELIVERED",)),
        transition(downstream_id=None, sender=None, tags={}, via=()),
    ],
)
def test_message_texts_equal_the_envelope(t: MessageTransition) -> None:
    statuses = [*t.via, t.to_status]
    steps = [(types.MESSAGE_TYPES[s], types.MESSAGE_SEQUENCE[s], s) for s in statuses]
    event_ids = [f"EV{i}" for i in range(len(steps))]
    texts = envelope.message_texts(t, steps, event_ids, TIME)
    for text, event_id, status in zip(texts, event_ids, statuses, strict=True):
        assert orjson.loads(text) == expected(t, event_id, status)


def test_accept_events_equal_the_envelope_of_their_transition() -> None:
    row: list[object] = [None] * len(sends.MESSAGE_COLUMNS)
    for name, value in {
        "id": "comms_message_02",
        "account_sid": "AC" + "1" * 32,
        "operation_id": "comms_operation_02",
        "status": "FAILED",
        "recipient": '{"address":"+15005550001","channel":"PHONE"}',
        "tags": '{"a":"b"}',
        "unaddressable": True,
        "channel": "SMS",
        "sender": '{"address":"+15005550006","channel":"SMS","senderId":"s1"}',
        "error_code": 21211,
        "error_message": 'No route, "really"',
    }.items():
        row[sends.MESSAGE_COLUMNS.index(name)] = value
    made = changes.accepted_events(("comms_operation_02", "AC" + "1" * 32, "COMPLETED"), [[row]], 0)
    message, operation = made
    t = MessageTransition(
        "comms_message_02",
        "comms_operation_02",
        "AC" + "1" * 32,
        None,
        "FAILED",
        0,
        21211,
        'No route, "really"',
        None,
        "SMS",
        orjson.loads(str(row[sends.MESSAGE_COLUMNS.index("sender")])),
        orjson.loads(str(row[sends.MESSAGE_COLUMNS.index("recipient")])),
        {"a": "b"},
    )
    want = expected(t, message.id, "FAILED")
    want["time"] = orjson.loads(message.payload)["time"]
    assert orjson.loads(message.payload) == want
    assert (message.type, message.sequence, message.subject) == (
        types.MESSAGE_TYPES["FAILED"].type,
        3,
        "comms_message_02",
    )
    assert orjson.loads(operation.payload)["data"]["status"] == "COMPLETED"
    assert message.id < operation.id  # one batch of ids, in order


def test_new_event_fields_are_the_event_columns() -> None:
    assert outbox.NewEvent._fields == outbox.EVENT_COLUMNS[:-1]


def test_event_rows_hold_the_envelope_text_as_it_is() -> None:
    [event] = outbox.describe([transition()], 0)[-1:]
    [row] = outbox.event_records([event], 7)
    assert row[-1] == 7 and row[:-1] == tuple(event)
    assert orjson.loads(row[outbox.EVENT_COLUMNS.index("payload")])["id"] == event.id
