"""Every status path of the sandbox table (docs/sandbox.md), end to end: sent through the API,
dispatched by a worker, its events delivered to a real receiver, signed, in order by sequence;
the operation's counters equal the aggregate of its rows after each path."""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from opencomms.clock import rfc3339
from opencomms.domain.transitions import MessageTransition, StatusChanges
from opencomms.events import envelope, types
from opencomms.store import changes as status_changes
from opencomms.store import operation_status, tables
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.cancel import cancel_operation
from opencomms.store.db import Database
from opencomms.store.tables import event_deliveries, events, messages
from tests.dispatch.helpers import FakeClock, dispatcher, drain
from tests.events.helpers import active_sink, deliverer, settle
from tests.events.receiver import Receiver, receiver
from tests.sandbox.helpers import SMS_SENDER, declare_senders

# The sandbox table: destination -> the message's events, in order.
PATHS = {
    "+15005550001": ["queued", "failed"],
    "+15005550002": ["queued", "failed"],
    "+15005550004": ["queued", "failed"],
    "+15005550009": ["queued", "failed"],
    "+15005550010": ["queued", "sent", "undelivered"],
    "+15005550011": ["queued", "sent", "undelivered"],
    "+15005550020": ["queued", "sent", "delivered", "read"],
    "+15005550030": ["queued", "sent", "delivered"],  # RCS refuses, SMS delivers
    "+15005550040": ["queued", "sent", "delivered"],  # two retries first: no events
    "+14155550100": ["queued", "sent", "delivered"],
}
ERRORS = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550004": 21610,
    "+15005550009": 21614,
    "+15005550010": 30003,
    "+15005550011": 30005,
}


async def post(client: httpx.AsyncClient, *addresses: str, **extra: Any) -> str:
    body = {
        "to": [{"address": a, "channel": "PHONE"} for a in addresses],
        "content": {"text": "Hi"},
        "tags": {"campaign": "lifecycle"},
        **extra,
    }
    response = await client.post("/v1/Messages", json=body)
    assert response.status_code == 202, response.text
    operation_id: str = response.json()["operationId"]
    return operation_id


async def work(db: Database, account_sid: str, clock: FakeClock) -> None:
    """A worker, retrying at once, until this account has nothing due (other accounts' due
    messages of the shared PostgreSQL database are parked first, as tests/sandbox does)."""
    async with db.write() as conn:
        await conn.execute(
            update(messages)
            .where(messages.c.account_sid != account_sid, messages.c.next_attempt_at.is_not(None))
            .values(next_attempt_at=None)
        )
    async with dispatcher(db, clock, backoff_base=0.0, backoff_max=0.0) as worker:
        await drain(worker)


async def assert_counters(db: Database, operation_id: str) -> str:
    async with db.read() as conn:
        counted = await operation_status.operation_stats(conn, [operation_id])
        aggregated = await operation_status.aggregate_stats(conn, [operation_id])
        query = select(tables.operations.c.status).where(tables.operations.c.id == operation_id)
        status = str((await conn.execute(query)).scalar_one())
    assert counted == aggregated
    return status


def verified(hook: Receiver, secret: str, auth_token: str) -> list[dict[str, Any]]:
    """The events received, each request's signatures checked with the packages' verifiers."""
    webhook, validator = Webhook(secret), RequestValidator(auth_token)
    for request in hook.requests:
        webhook.verify(request.body, request.headers)
        url = f"http://127.0.0.1:{hook.port}{request.path}"
        assert validator.validate(url, request.body.decode(), request.headers["x-twilio-signature"])
    return hook.events()


def by_subject(received: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in received:
        grouped[event["subject"]].append(event)
    return grouped


def short(event: dict[str, Any]) -> str:
    return str(event["type"]).rsplit(".", 1)[1]


def assert_ordered(stream: list[dict[str, Any]]) -> None:
    sequence = [e["data"]["sequence"] for e in stream]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    for event in stream:
        schema = types.ALL_TYPES[event["type"]].schema_id
        jsonschema.Draft202012Validator(types.SCHEMAS[schema]).validate(event["data"])


async def test_every_sandbox_path_emits_its_events_in_order(
    client: httpx.AsyncClient, db: Database, box: SecretBox, account: NewCredential
) -> None:
    async with receiver() as hook:
        _sink, secret = await active_sink(db, box, account.sid, hook.url, batch=True)
        operation_id = await post(client, *PATHS)
        clock = FakeClock()
        assert await assert_counters(db, operation_id) == "PROCESSING"
        await work(db, account.sid, clock)
        assert await assert_counters(db, operation_id) == "COMPLETED"
        await settle(deliverer(db, clock=clock))
    streams = by_subject(verified(hook, secret, account.secret))
    async with db.read() as conn:
        query = select(messages.c.id, messages.c.recipient).where(
            messages.c.operation_id == operation_id
        )
        ids = {id_: address for id_, address in await conn.execute(query)}
    assert len(streams) == len(PATHS) + 1  # every message, and the operation
    for message_id, recipient in ids.items():
        address = next(a for a in PATHS if a in recipient)
        stream = streams[message_id]
        assert [short(e) for e in stream] == PATHS[address], address
        assert_ordered(stream)
        last = stream[-1]["data"]
        assert last["error_code"] == ERRORS.get(address)
        assert last["tags"] == {"campaign": "lifecycle"}
        assert last["operation_id"] == operation_id and last["account_sid"] == account.sid
        if "sent" in PATHS[address]:
            assert last["downstream_id"] and last["attempt"] >= 1
    operation = streams[operation_id]
    assert [short(e) for e in operation] == ["processing", "completed"]
    assert_ordered(operation)


def in_an_hour(clock: FakeClock) -> tuple[str, int]:
    moment = datetime.fromtimestamp(clock.now // 1000 + 3600, UTC)
    return moment.isoformat().replace("+00:00", "Z"), int(moment.timestamp() * 1000)


async def test_scheduled_then_sent_and_scheduled_then_canceled(
    client: httpx.AsyncClient, db: Database, box: SecretBox, account: NewCredential
) -> None:
    clock = FakeClock()
    text, at = in_an_hour(clock)
    async with receiver() as hook:
        _sink, secret = await active_sink(db, box, account.sid, hook.url)
        sent = await post(client, "+14155550100", schedule={"sendAt": [text]})
        canceled = await post(client, "+14155550101", schedule={"sendAt": [text]})
        assert await assert_counters(db, sent) == "SCHEDULED"
        answer = await client.post(f"/v1/Messages/Operations/{canceled}/Cancel")
        assert answer.status_code == 202, answer.text
        assert await assert_counters(db, canceled) == "CANCELED"
        clock.now = at + 1
        await work(db, account.sid, clock)
        assert await assert_counters(db, sent) == "COMPLETED"
        await settle(deliverer(db, clock=clock))
    streams = by_subject(verified(hook, secret, account.secret))
    assert [short(e) for e in streams[sent]] == ["scheduled", "processing", "completed"]
    assert [short(e) for e in streams[canceled]] == ["scheduled", "completed"]
    assert streams[canceled][-1]["data"]["status"] == "CANCELED"
    messages_of = {k: v for k, v in streams.items() if k not in (sent, canceled)}
    kinds = sorted([short(e) for e in stream] for stream in messages_of.values())
    assert kinds == [["canceled"], ["queued", "sent", "delivered"]]
    for stream in streams.values():
        assert_ordered(stream)


async def test_an_inbound_message_emits_inbound_received(
    client: httpx.AsyncClient, db: Database, box: SecretBox, account: NewCredential
) -> None:
    await declare_senders(db, account.sid)
    async with receiver() as hook:
        _sink, secret = await active_sink(db, box, account.sid, hook.url)
        body = {
            "from": {"address": "+14155550123", "channel": "PHONE"},
            "to": {"address": SMS_SENDER, "channel": "SMS"},
            "content": {"text": "See you at 5"},
        }
        created = await client.post("/v1/Sandbox/Inbound", json=body)
        assert created.status_code == 201, created.text
        await settle(deliverer(db))
    [event] = verified(hook, secret, account.secret)
    assert event["type"] == types.INBOUND_TYPE.type
    assert event["subject"] == created.json()["id"]
    data = event["data"]
    assert data["from"]["address"] == "+14155550123" and data["to"]["address"] == SMS_SENDER
    assert data["content"] == {"text": "See you at 5"}
    assert_ordered([event])


async def event_count(db: Database, account_sid: str) -> int:
    async with db.read() as conn:
        query = select(events.c.id).where(events.c.account_sid == account_sid)
        return len((await conn.execute(query)).all())


async def test_a_rolled_back_change_emits_nothing_and_counts_nothing(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    operation_id = await post(client, "+14155550100", "+14155550101")
    before = await event_count(db, account.sid)
    assert before == 3  # two message.queued, operation.processing

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.write() as conn:
            assert await cancel_operation(conn, operation_id, clock_now()) == 2
            raise Abort
    assert await event_count(db, account.sid) == before
    assert await assert_counters(db, operation_id) == "PROCESSING"
    async with db.write() as conn:
        assert await cancel_operation(conn, operation_id, clock_now()) == 2
    assert await event_count(db, account.sid) == before + 3  # two canceled, completed
    assert await assert_counters(db, operation_id) == "CANCELED"


def clock_now() -> int:
    return FakeClock().now


async def test_settle_with_no_changes_writes_nothing(db: Database, account: NewCredential) -> None:
    async with db.write() as conn:
        await status_changes.settle(conn, StatusChanges(), clock_now())
    assert await event_count(db, account.sid) == 0


# PostgreSQL writes 3 in one statement, 150 and 2,500 with COPY; past sends.TEMPLATED_FROM
# per chunk the events are stored as a template (2,500: two chunks, so two templates).
@pytest.mark.parametrize("size", [3, 150, 2500])
async def test_accept_writes_every_first_event_and_its_deliveries(
    client: httpx.AsyncClient, db: Database, box: SecretBox, account: NewCredential, size: int
) -> None:
    async with receiver() as hook:
        sink, secret = await active_sink(db, box, account.sid, hook.url, batch=True)
        addresses = [f"+1415555{i:04d}" for i in range(size)]
        operation_id = await post(client, *addresses, tags={"a.b~c": "x-y_z"})
        async with db.read() as conn:
            query = select(events.c.id, events.c.type).where(events.c.account_sid == account.sid)
            stored = dict((await conn.execute(query)).all())
            due = select(event_deliveries.c.event_id).where(event_deliveries.c.sink_sid == sink.sid)
            delivering = set((await conn.execute(due)).scalars())
            rows = (
                await conn.execute(select(messages).where(messages.c.operation_id == operation_id))
            ).all()
        assert sorted(short({"type": t}) for t in stored.values()) == sorted(
            ["queued"] * size + ["processing"]
        )
        assert delivering == set(stored)
        await settle(deliverer(db), rounds=200)
    received = {e["id"]: e for e in verified(hook, secret, account.secret)}
    assert set(received) == set(stored)
    by_message = {e["subject"]: e for e in received.values() if short(e) == "queued"}
    assert len(by_message) == size
    for row in rows:
        # What the envelope's dicts say for a transition from nothing to QUEUED.
        moved = MessageTransition(
            row.id, operation_id, account.sid, None, "QUEUED", 0, None, None, None,
            row.channel, orjson.loads(row.sender), orjson.loads(row.recipient),
            orjson.loads(row.tags),
        )  # fmt: skip
        event = by_message[row.id]
        kind = types.MESSAGE_TYPES["QUEUED"]
        data = envelope.message_data(moved, types.MESSAGE_SEQUENCE["QUEUED"])
        want = envelope.envelope(
            event["id"], kind, f"/v1/Messages/{row.id}", row.id, rfc3339(row.created_at) or "", data
        )
        want["dataschema"] = event["dataschema"]  # made absolute by the delivering worker
        assert event == want
        assert_ordered([event])
    assert await assert_counters(db, operation_id) == "PROCESSING"
