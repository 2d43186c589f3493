"""The Event Streams API in process: every answer checked against the events spec."""

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from opencomms.events import types
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from opencomms.store.tables import event_deliveries, event_sinks, events
from tests.conftest import make_client, new_account
from tests.events.spec_check import check

FORM = {"content-type": "application/x-www-form-urlencoded"}
HOOK = {"destination": "https://hooks.example.com/events", "method": "POST", "batch_events": False}


async def create_sink(client: httpx.AsyncClient, **config: Any) -> httpx.Response:
    data = {
        "Description": "my sink",
        "SinkType": "webhook",
        "SinkConfiguration": orjson.dumps({**HOOK, **config}).decode(),
    }
    response = await client.post("/v1/Sinks", data=data)
    check(response, "/v1/Sinks", "post")
    return response


async def activate(client: httpx.AsyncClient, db: Database, sid: str) -> None:
    response = await client.post(f"/v1/Sinks/{sid}/Test")
    check(response, "/v1/Sinks/{Sid}/Test", "post")
    async with db.read() as conn:
        test_id = (
            await conn.execute(select(event_sinks.c.test_event_id).where(event_sinks.c.sid == sid))
        ).scalar_one()
    response = await client.post(f"/v1/Sinks/{sid}/Validate", data={"TestId": test_id})
    check(response, "/v1/Sinks/{Sid}/Validate", "post")
    assert response.json() == {"result": "valid"}


async def test_sink_lifecycle(client: httpx.AsyncClient, db: Database) -> None:
    created = await create_sink(client, batch_events=True)
    assert created.status_code == 201
    sink = created.json()
    assert sink["status"] == "initialized"
    assert sink["sink_configuration"] == {**HOOK, "batch_events": True}
    assert sink["signing_secret"].startswith("whsec_")
    sid = sink["sid"]

    fetched = await client.get(f"/v1/Sinks/{sid}")
    check(fetched, "/v1/Sinks/{Sid}", "get")
    assert "signing_secret" not in fetched.json()
    assert fetched.json()["delivery"] == {
        "last_success": None,
        "last_failure": None,
        "last_failure_reason": None,
        "events_waiting": 0,
    }

    tested = await client.post(f"/v1/Sinks/{sid}/Test")
    assert tested.status_code == 201 and tested.json() == {"result": "submitted"}
    assert (await client.get(f"/v1/Sinks/{sid}")).json()["status"] == "validating"
    assert (await client.get(f"/v1/Sinks/{sid}")).json()["delivery"]["events_waiting"] == 1

    wrong = await client.post(f"/v1/Sinks/{sid}/Validate", data={"TestId": "EVnot-it"})
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["context"] == "$.TestId"
    await activate(client, db, sid)
    assert (await client.get(f"/v1/Sinks/{sid}")).json()["status"] == "active"

    updated = await client.post(f"/v1/Sinks/{sid}", data={"Description": "renamed"})
    check(updated, "/v1/Sinks/{Sid}", "post")
    assert updated.json()["description"] == "renamed"

    listed = await client.get("/v1/Sinks", params={"Status": "active", "PageSize": 1})
    check(listed, "/v1/Sinks", "get")
    assert [s["sid"] for s in listed.json()["sinks"]] == [sid]

    deleted = await client.delete(f"/v1/Sinks/{sid}")
    check(deleted, "/v1/Sinks/{Sid}", "delete")
    assert (await client.get(f"/v1/Sinks/{sid}")).status_code == 404
    async with db.read() as conn:
        left = select(func.count()).where(event_deliveries.c.sink_sid == sid)
        assert (await conn.execute(left)).scalar_one() == 0


@pytest.mark.parametrize(
    ("data", "context"),
    [
        (
            {"SinkType": "webhook", "SinkConfiguration": orjson.dumps(HOOK).decode()},
            "$.Description",
        ),
        ({"Description": "d", "SinkType": "kinesis", "SinkConfiguration": "{}"}, "$.SinkType"),
        (
            {"Description": "d", "SinkType": "webhook", "SinkConfiguration": "{"},
            "$.SinkConfiguration",
        ),
        (
            {
                "Description": "d",
                "SinkType": "webhook",
                "SinkConfiguration": '{"destination": "ftp://x"}',
            },
            "$.SinkConfiguration.destination",
        ),
        (
            {
                "Description": "d",
                "SinkType": "webhook",
                "SinkConfiguration": '{"destination": "https://x.example", "batch_events": 3}',
            },
            "$.SinkConfiguration.batch_events",
        ),
    ],
)
async def test_bad_sinks_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
    db: Database,
    account: NewCredential,
    data: dict[str, str],
    context: str,
) -> None:
    response = await client.post("/v1/Sinks", data=data)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == 20422 and error["context"] == context
    async with db.read() as conn:
        count = select(func.count()).where(event_sinks.c.account_sid == account.sid)
        assert (await conn.execute(count)).scalar_one() == 0


async def test_json_bodies_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/Sinks", json={"Description": "d"})
    assert response.status_code == 415
    assert response.json()["errors"][0]["code"] == 20415


async def test_subscriptions(client: httpx.AsyncClient, db: Database) -> None:
    sid = (await create_sink(client)).json()["sid"]
    delivered = "com.twilio.comms-api.message.delivered"
    failed = "com.twilio.comms-api.message.failed"
    inactive = await client.post(
        "/v1/Subscriptions",
        data={"Description": "s", "SinkSid": sid, "Types": [delivered]},
    )
    assert inactive.status_code == 400 and inactive.json()["errors"][0]["context"] == "$.SinkSid"
    await activate(client, db, sid)
    unknown = await client.post(
        "/v1/Subscriptions",
        data={"Description": "s", "SinkSid": sid, "Types": ['{"type": "com.nope"}']},
    )
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["context"] == "$.Types[0]"

    created = await client.post(
        "/v1/Subscriptions",
        data={
            "Description": "s",
            "SinkSid": sid,
            "Types": [orjson.dumps({"type": delivered, "schema_version": 1}).decode(), failed],
        },
    )
    check(created, "/v1/Subscriptions", "post")
    sub = created.json()
    assert sub["sink_sid"] == sid
    sub_sid = sub["sid"]
    base = f"/v1/Subscriptions/{sub_sid}/SubscribedEvents"

    listed = await client.get(base)
    check(listed, "/v1/Subscriptions/{SubscriptionSid}/SubscribedEvents", "get")
    assert sorted(t["type"] for t in listed.json()["types"]) == [delivered, failed]

    read = "com.twilio.comms-api.message.read"
    added = await client.post(base, data={"Type": read, "SchemaVersion": "1"})
    check(added, "/v1/Subscriptions/{SubscriptionSid}/SubscribedEvents", "post")
    assert added.status_code == 201
    again = await client.post(base, data={"Type": read})
    assert again.status_code == 200
    fetched = await client.get(f"{base}/{read}")
    check(fetched, "/v1/Subscriptions/{SubscriptionSid}/SubscribedEvents/{Type}", "get")
    bad_version = await client.post(f"{base}/{read}", data={"SchemaVersion": "7"})
    assert bad_version.status_code == 400
    updated = await client.post(f"{base}/{read}", data={"SchemaVersion": "1"})
    check(updated, "/v1/Subscriptions/{SubscriptionSid}/SubscribedEvents/{Type}", "post")
    removed = await client.delete(f"{base}/{read}")
    check(removed, "/v1/Subscriptions/{SubscriptionSid}/SubscribedEvents/{Type}", "delete")
    assert (await client.get(f"{base}/{read}")).status_code == 404

    fetched_sub = await client.get(f"/v1/Subscriptions/{sub_sid}")
    check(fetched_sub, "/v1/Subscriptions/{Sid}", "get")
    renamed = await client.post(f"/v1/Subscriptions/{sub_sid}", data={"Description": "t"})
    check(renamed, "/v1/Subscriptions/{Sid}", "post")
    assert renamed.json()["description"] == "t"
    by_sink = await client.get("/v1/Subscriptions", params={"SinkSid": sid})
    check(by_sink, "/v1/Subscriptions", "get")
    assert [s["sid"] for s in by_sink.json()["subscriptions"]] == [sub_sid]
    in_use = await client.get("/v1/Sinks", params={"InUse": "true"})
    assert [s["sid"] for s in in_use.json()["sinks"]] == [sid]
    gone = await client.delete(f"/v1/Subscriptions/{sub_sid}")
    check(gone, "/v1/Subscriptions/{Sid}", "delete")
    assert (await client.get("/v1/Sinks", params={"InUse": "true"})).json()["sinks"] == []


async def test_types_and_schemas(client: httpx.AsyncClient) -> None:
    listed = await client.get("/v1/Types", params={"PageSize": 5})
    check(listed, "/v1/Types", "get")
    page = listed.json()
    assert len(page["types"]) == 5 and page["meta"]["next_page_url"]
    everything = (await client.get("/v1/Types", params={"PageSize": 100})).json()["types"]
    names = {t["type"] for t in everything}
    assert names == set(types.ALL_TYPES)
    assert "com.twilio.comms-api.message.canceled" in names

    message_only = await client.get("/v1/Types", params={"SchemaId": types.MESSAGE_SCHEMA})
    assert {t["schema_id"] for t in message_only.json()["types"]} == {types.MESSAGE_SCHEMA}

    one = await client.get("/v1/Types/com.twilio.comms-api.operation.completed")
    check(one, "/v1/Types/{Type}", "get")
    assert (await client.get("/v1/Types/com.nope")).status_code == 404

    schema = await client.get(f"/v1/Schemas/{types.MESSAGE_SCHEMA}")
    check(schema, "/v1/Schemas/{Id}", "get")
    assert schema.json()["latest_version"] == 1
    versions = await client.get(f"/v1/Schemas/{types.MESSAGE_SCHEMA}/Versions")
    check(versions, "/v1/Schemas/{Id}/Versions", "get")
    version = await client.get(f"/v1/Schemas/{types.MESSAGE_SCHEMA}/Versions/1")
    check(version, "/v1/Schemas/{Id}/Versions/{SchemaVersion}", "get")
    raw = await httpx.AsyncClient(transport=client._transport, base_url="http://testserver").get(
        version.json()["raw"].replace("http://testserver", "")
    )
    assert raw.status_code == 200 and raw.json()["title"] == types.MESSAGE_SCHEMA
    assert (await client.get("/v1/Schemas/Nope")).status_code == 404
    assert (await client.get(f"/v1/Schemas/{types.MESSAGE_SCHEMA}/Versions/2")).status_code == 404


async def test_accounts_see_only_their_sinks(
    client: httpx.AsyncClient, db: Database, box: SecretBox
) -> None:
    sid = (await create_sink(client)).json()["sid"]
    other = await new_account(db, box)
    async with make_client(db, other) as stranger:
        assert (await stranger.get(f"/v1/Sinks/{sid}")).status_code == 404
        assert (await stranger.post(f"/v1/Sinks/{sid}/Test")).status_code == 404
        assert (await stranger.get("/v1/Sinks")).json()["sinks"] == []
    async with make_client(db, None) as anonymous:
        assert (await anonymous.get("/v1/Sinks")).status_code == 401


async def test_test_event_is_queued_for_its_sink_alone(
    client: httpx.AsyncClient, db: Database
) -> None:
    sid = (await create_sink(client)).json()["sid"]
    await client.post(f"/v1/Sinks/{sid}/Test")
    async with db.read() as conn:
        row = (await conn.execute(select(events).where(events.c.subject == sid))).one()
        payload = orjson.loads(row.payload)
        assert payload["type"] == types.TEST_EVENT and payload["id"] == row.id
        owed = select(event_deliveries.c.sink_sid).where(event_deliveries.c.event_id == row.id)
        assert (await conn.execute(owed)).scalars().all() == [sid]


async def test_signing_secret_rotation(
    client: httpx.AsyncClient, db: Database, box: SecretBox
) -> None:
    created = (await create_sink(client)).json()
    sid, first = created["sid"], created["signing_secret"]
    rotated = await client.post(f"/v1/Sinks/{sid}/SigningSecret", data={"OverlapSeconds": "60"})
    assert rotated.status_code == 201
    second = rotated.json()["signing_secret"]
    assert second.startswith("whsec_") and second != first
    async with db.read() as conn:
        from opencomms.clock import now_ms
        from opencomms.events import sinks

        assert await sinks.signing_secrets(conn, box, sid, now_ms()) == [second, first]
        later = now_ms() + 61_000
        assert await sinks.signing_secrets(conn, box, sid, later) == [second]
    bad = await client.post(f"/v1/Sinks/{sid}/SigningSecret", data={"OverlapSeconds": "-1"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["context"] == "$.OverlapSeconds"
