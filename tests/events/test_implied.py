"""The accept's message events left implied in their template while no sink wants them:
no row per event at accept, and the very same events, written out, when a replay asks."""

import httpx
import orjson
from sqlalchemy import func, select

from opencomms.events import queue, types
from opencomms.store import sends
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from opencomms.store.tables import event_templates, events, messages
from tests.events.helpers import active_sink, deliverer, settle
from tests.events.receiver import receiver

QUEUED = types.MESSAGE_TYPES["QUEUED"].type
COUNT = sends.TEMPLATED_FROM + 49  # templated: one route past TEMPLATED_FROM


def send_body(count: int, first: int = 0) -> dict[str, object]:
    to = [{"address": f"+1415555{first + i:04d}", "channel": "PHONE"} for i in range(count)]
    return {"to": to, "content": {"text": "Hi"}, "tags": {"k": "v"}}


async def send(client: httpx.AsyncClient, body: dict[str, object]) -> str:
    sent = await client.post("/v1/Messages", json=body)
    assert sent.status_code == 202, sent.text
    return str(sent.json()["operationId"])


async def message_events(db: Database, account_sid: str) -> int:
    async with db.read() as conn:
        query = select(func.count()).where(
            events.c.account_sid == account_sid, events.c.type == QUEUED
        )
        return int((await conn.execute(query)).scalar_one())


async def implied_templates(db: Database, account_sid: str) -> list[int]:
    async with db.read() as conn:
        query = select(event_templates.c.count).where(
            event_templates.c.account_sid == account_sid, event_templates.c.implied
        )
        return list((await conn.execute(query)).scalars())


async def recipients(db: Database, operation_id: str) -> dict[str, str]:
    """Message id -> its address."""
    async with db.read() as conn:
        query = select(messages.c.id, messages.c.recipient).where(
            messages.c.operation_id == operation_id
        )
        rows = (await conn.execute(query)).all()
    return {id_: orjson.loads(recipient)["address"] for id_, recipient in rows}


async def test_no_sink_wanted_them_so_one_template_stands_for_them(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    await send(client, send_body(COUNT))
    assert await message_events(db, account.sid) == 0
    assert await implied_templates(db, account.sid) == [COUNT]


async def test_a_sink_subscribed_before_the_accept_gets_rows_and_deliveries(
    client: httpx.AsyncClient, db: Database, box: SecretBox, account: NewCredential
) -> None:
    await active_sink(db, box, account.sid, "http://127.0.0.1:9/none", subscribe=[QUEUED])
    await send(client, send_body(COUNT))
    assert await message_events(db, account.sid) == COUNT
    assert await implied_templates(db, account.sid) == []


async def test_a_replay_delivers_implied_events_as_if_they_were_rows(
    client: httpx.AsyncClient, db: Database, box: SecretBox, account: NewCredential
) -> None:
    first = await send(client, send_body(COUNT))
    async with receiver() as hook:
        sink, _ = await active_sink(db, box, account.sid, hook.url, subscribe=[QUEUED])
        # Sent after the subscription: written whole, the reference for the implied ones.
        second = await send(client, send_body(COUNT, first=COUNT))
        worker = deliverer(db)
        await settle(worker)
        assert len(hook.events()) == COUNT
        hook.requests.clear()
        async with db.write() as conn:
            assert await queue.replay(conn, sink.sid, account.sid, 0, 0) == 2 * COUNT
        await settle(worker)
        replayed = hook.events()
        # A second replay finds them written out already: the same events again, no more.
        async with db.write() as conn:
            assert await queue.replay(conn, sink.sid, account.sid, 0, 0) == 2 * COUNT
    assert len(replayed) == 2 * COUNT and len({e["id"] for e in replayed}) == 2 * COUNT
    assert await implied_templates(db, account.sid) == []
    assert await message_events(db, account.sid) == 2 * COUNT
    by_operation: dict[str, list[dict[str, object]]] = {}
    for event in replayed:
        by_operation.setdefault(event["data"]["operation_id"], []).append(event)
    for operation_id in (first, second):
        addresses = await recipients(db, operation_id)
        mine = by_operation[operation_id]
        assert {e["subject"] for e in mine} == set(addresses)
        for event in mine:
            assert event["type"] == QUEUED and event["data"]["sequence"] == 1
            assert event["data"]["message_id"] == event["subject"]
            assert event["data"]["to"]["address"] == addresses[event["subject"]]
    implied, whole = by_operation[first][0], by_operation[second][0]
    assert _shape(implied) == _shape(whole)


def _shape(event: dict[str, object]) -> dict[str, object]:
    """An event without what differs from message to message."""
    data = dict(event["data"])  # type: ignore[call-overload]
    for key in ("message_id", "operation_id", "to"):
        data.pop(key)
    kept = {k: v for k, v in event.items() if k not in ("id", "subject", "source", "time")}
    return {**kept, "data": data}


async def test_implied_events_are_pruned_with_their_templates(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    await send(client, send_body(COUNT))
    await deliverer(db).prune(10**15)
    assert await implied_templates(db, account.sid) == []
