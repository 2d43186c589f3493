"""The accept's rows and events for sends whose recipients differ in tags, schedule or route:
each message stored with its own values, whatever layout of chunks carries them."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from opencomms.domain import errors
from opencomms.domain.emails import EmailRecipient
from opencomms.domain.routing import Address
from opencomms.domain.send import Recipient
from opencomms.store import sends
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from opencomms.store.tables import events, messages, operations


async def stored(db: Database, operation_id: str) -> list[Any]:
    async with db.read() as conn:
        query = select(messages).where(messages.c.operation_id == operation_id)
        return sorted((await conn.execute(query)).all(), key=lambda r: r.position)


async def first_events(db: Database, account_sid: str) -> dict[str, str]:
    """Message id -> the type of its stored first event."""
    async with db.read() as conn:
        query = select(events.c.subject, events.c.type).where(
            events.c.account_sid == account_sid, events.c.subject.like("comms_message_%")
        )
        return dict((await conn.execute(query)).all())


async def templated(db: Database, account_sid: str) -> int:
    async with db.read() as conn:
        query = select(func.count()).where(
            events.c.account_sid == account_sid, events.c.template_id.is_not(None)
        )
        return int((await conn.execute(query)).scalar_one())


# (recipients, distinct tag values): past MAX_ROUTES routes each row carries its own; with
# 17 values over 2,005 recipients, a chunk holds over TEMPLATED_FROM of one route, whose
# events become a template.
@pytest.mark.parametrize(
    ("count", "distinct"),
    [(sends.MAX_ROUTES + 1, sends.MAX_ROUTES + 1), (2 * sends.CHUNK + 5, 2 * sends.CHUNK + 5),
     (sends.CHUNK + 5, sends.MAX_ROUTES + 1), (300, 3)],
)  # fmt: skip
async def test_tags_rendered_per_recipient_are_each_messages_own(
    client: httpx.AsyncClient, db: Database, count: int, distinct: int
) -> None:
    to = [
        {"address": f"+1415555{i:04d}", "channel": "PHONE", "variables": {"n": f"n{i % distinct}"}}
        for i in range(count)
    ]
    body = {"to": to, "content": {"text": "Hi {{ n }}"}, "tags": {"who": "{{ n }}", "k": "v"}}
    sent = await client.post("/v1/Messages", json=body)
    assert sent.status_code == 202, sent.text
    operation_id = sent.json()["operationId"]
    rows = await stored(db, operation_id)
    assert [r.position for r in rows] == list(range(count))
    want = [{"who": f"n{i % distinct}", "k": "v"} for i in range(count)]
    assert [orjson.loads(r.tags) for r in rows] == want
    assert [orjson.loads(r.recipient)["address"] for r in rows] == [t["address"] for t in to]
    assert {r.status for r in rows} == {"QUEUED"} and all(r.plan for r in rows)
    kinds = await first_events(db, rows[0].account_sid)
    assert set(kinds) == {r.id for r in rows}
    assert set(kinds.values()) == {"com.twilio.comms-api.message.queued"}
    # Whole texts for routes of a few messages; templates for those past TEMPLATED_FROM.
    assert (await templated(db, rows[0].account_sid) > 0) == (count // distinct >= 101)
    listed = await client.get("/v1/Messages", params={"operationId": operation_id, "pageSize": 3})
    newest = [m["tags"]["who"] for m in listed.json()["messages"]]
    assert newest == [f"n{i % distinct}" for i in range(count - 1, count - 4, -1)]


async def test_local_send_times_and_unroutable_recipients_in_one_send(
    client: httpx.AsyncClient, db: Database
) -> None:
    # Two countries: two local send times; from the SMS sender, WhatsApp recipients have no
    # route.
    to = [{"address": f"+1415555{i:04d}", "channel": "PHONE"} for i in range(150)]
    to += [{"address": f"+4420794{i:05d}", "channel": "PHONE"} for i in range(150)]
    to += [{"address": f"+1206555{i:04d}", "channel": "WHATSAPP"} for i in range(3)]
    local = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT09:00:00")
    body = {
        "from": {"address": "+15005550006", "channel": "SMS"},
        "to": to,
        "content": {"text": "Hi"},
        "schedule": {"sendAt": [local]},
    }
    sent = await client.post("/v1/Messages", json=body)
    assert sent.status_code == 202, sent.text
    rows = await stored(db, sent.json()["operationId"])
    assert len(rows) == len(to)
    us, uk, unroutable = rows[:150], rows[150:300], rows[300:]
    assert len({r.send_at for r in us}) == 1 and len({r.send_at for r in uk}) == 1
    assert us[0].send_at - uk[0].send_at >= 4 * 3_600_000  # 09:00 in London, then in the US
    assert {r.status for r in us + uk} == {"SCHEDULED"}
    assert all(r.next_attempt_at == r.send_at for r in us + uk)
    assert {(r.status, r.error_code, r.next_attempt_at) for r in unroutable} == {
        ("FAILED", errors.CANNOT_ROUTE, None)
    }
    # SCHEDULED is not an event; each unroutable recipient's failure is.
    kinds = await first_events(db, rows[0].account_sid)
    assert kinds == dict.fromkeys((r.id for r in unroutable), "com.twilio.comms-api.message.failed")


async def test_a_send_that_fails_while_its_rows_are_written_leaves_nothing(
    client: httpx.AsyncClient,
    db: Database,
    account: NewCredential,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the first chunk, whichever way the rows go (PostgreSQL's COPY takes each chunk
    as it is made): a failure then rolls the whole send back."""
    made = 0
    own_rows = sends._own_rows

    def failing(*args: Any) -> list[tuple[Any, ...]]:
        nonlocal made
        made += 1
        if made == 3:
            raise RuntimeError("the third chunk")
        return own_rows(*args)

    monkeypatch.setattr(sends, "_own_rows", failing)
    to = [{"address": f"+1415555{i:04d}", "channel": "PHONE"} for i in range(3 * sends.CHUNK)]
    sent = await client.post("/v1/Messages", json={"to": to, "content": {"text": "Hi"}})
    assert sent.status_code == 500 and made == 3
    async with db.read() as conn:
        for table in (operations, messages, events):
            mine = select(func.count()).where(table.c.account_sid == account.sid)
            assert (await conn.execute(mine)).scalar() == 0, table.name


@pytest.mark.parametrize(
    "recipient",
    [
        Recipient([Address("+14155550100", "PHONE")]),
        Recipient([Address('quote" back\\slash ✓', "EMAIL")]),
        Recipient([Address("+14155550100", "PHONE"), Address("a@b.co", "EMAIL")], connected=True),
        Recipient([Address("+14155550100", "PHONE")], connected=True),
        Recipient([], profile_id="p1", memory_store_id="m1"),
        EmailRecipient([Address("jane@example.com", "EMAIL")], name="Jane"),
    ],
)
def test_a_recipients_stored_text_is_its_json(recipient: Recipient) -> None:
    assert sends._recipient_text(recipient) == orjson.dumps(recipient.as_json()).decode()
