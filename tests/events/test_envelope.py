"""The outbox writes message events straight to JSON text; it must say exactly what the
envelope's dicts say (envelope.envelope + message_data), for every step and any error text."""

import orjson
import pytest

from opencomms.domain.transitions import MessageTransition
from opencomms.events import envelope, outbox, types
from opencomms.store import bulk, sends

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


ACCOUNT = "AC" + "1" * 32
SENDER = '{"address":"+15005550006","channel":"SMS","senderId":"s1"}'


def failed_chunk(count: int) -> bulk.Shared:
    """`count` unaddressable messages of one send, as sends.message_records makes them."""
    shared_columns = sends.ROUTE_COLUMNS + sends.SEND_COLUMNS
    shared: dict[str, object] = dict.fromkeys(shared_columns)
    shared |= {
        "account_sid": ACCOUNT,
        "operation_id": "comms_operation_02",
        "status": "FAILED",
        "tags": '{"a":"b"}',
        "unaddressable": True,
        "channel": "SMS",
        "sender": SENDER,
        "error_code": 21211,
        "error_message": 'No route, "really"',
    }
    rows = [
        (
            f"comms_message_{i:04d}",
            i,
            f'{{"address":"+1500555{i:04d}","channel":"PHONE"}}',
            None,
            None,
        )
        for i in range(count)
    ]
    values = tuple(shared[name] for name in shared_columns)
    return bulk.Shared("messages", sends.OWN_COLUMNS, shared_columns, values, rows)


def expected_failed(row: tuple[object, ...], event_id: str) -> dict[str, object]:
    t = MessageTransition(
        str(row[0]), "comms_operation_02", ACCOUNT, None, "FAILED", 0, 21211,
        'No route, "really"', None, "SMS", orjson.loads(SENDER), orjson.loads(str(row[2])),
        {"a": "b"},
    )  # fmt: skip
    return expected(t, event_id, "FAILED")


@pytest.mark.parametrize("count", [1, sends.TEMPLATED_FROM])  # whole texts, then a template
def test_accept_events_equal_the_envelope_of_their_transition(count: int) -> None:
    chunk = failed_chunk(count)
    made = sends.accepted_events(("comms_operation_02", ACCOUNT, "COMPLETED"), [chunk], 0)
    if count < sends.TEMPLATED_FROM:
        texts = [(e.id, e.subject, e.payload) for e in made.events[:-1]]
        assert not made.batches
    else:
        [batch] = made.batches
        assert (batch.type, batch.sequence) == (types.MESSAGE_TYPES["FAILED"].type, 3)
        to = dict(zip(batch.subjects, (str(r[2]) for r in chunk.rows), strict=True))
        texts = [
            (i, s, envelope.fill(batch.template, i, s, to[s], batch.channel))
            for i, s in zip(batch.event_ids, batch.subjects, strict=True)
        ]
    assert [subject for _, subject, _ in texts] == [row[0] for row in chunk.rows]
    for (event_id, _subject, text), row in zip(texts, chunk.rows, strict=True):
        want = expected_failed(row, event_id)
        want["time"] = "1970-01-01T00:00:00.000Z"
        assert orjson.loads(text) == want
    operation = made.events[-1]
    assert orjson.loads(operation.payload)["data"]["status"] == "COMPLETED"
    assert all(event_id < operation.id for event_id, _, _ in texts)  # one batch of ids, in order


def test_new_event_fields_are_the_event_columns() -> None:
    assert outbox.NewEvent._fields == outbox.EVENT_COLUMNS[:-1]


def test_event_rows_hold_the_envelope_text_as_it_is() -> None:
    [event] = outbox.describe([transition()], 0)[-1:]
    [row] = outbox.event_records([event], 7)
    assert row[-1] == 7 and row[:-1] == tuple(event)
    assert orjson.loads(row[outbox.EVENT_COLUMNS.index("payload")])["id"] == event.id
