"""The SenderPools endpoints: create, list, fetch, update, delete, members, operations."""

import asyncio
from typing import Any

import httpx
import pytest

from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import SenderRecord, sender_id
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from tests.api.conformance import assert_conforms, assert_response_conforms

# Fixtures shared with the Senders tests.
from tests.api.inventory import EXAMPLE_IDS, insert_many, request_examples
from tests.api.test_send import problems

POOL = "/SenderPools/{senderPoolId}"


async def create(client: httpx.AsyncClient, body: Any) -> tuple[str, str]:
    """Creates a pool; its id and its operation's id."""
    response = await client.post("/v1/SenderPools", json=body)
    assert response.status_code == 202, response.text
    assert_response_conforms(response.json(), "/SenderPools", "post", "202")
    operation_id = response.json()["operationId"]
    pools = (await client.get("/v1/SenderPools", params={"operationId": operation_id})).json()
    [pool] = pools["senderPools"]
    return pool["id"], operation_id


async def member_ids(client: httpx.AsyncClient, pool_id: str, **params: str) -> list[str]:
    response = await client.get(f"/v1/SenderPools/{pool_id}/Senders", params=params)
    assert response.status_code == 200, response.text
    assert_response_conforms(response.json(), f"{POOL}/Senders", "get")
    return sorted(s["id"] for s in response.json()["senders"])


async def test_create_examples(client: httpx.AsyncClient, inventory: list[SenderRecord]) -> None:
    for name, body in request_examples("/SenderPools", "post").items():
        response = await client.post("/v1/SenderPools", json=body)
        assert response.status_code == 202, (name, response.text)
        accepted = response.json()
        assert_response_conforms(accepted, "/SenderPools", "post", "202")
        location = accepted["operationLocation"]
        assert location.endswith(f"/v1/SenderPools/Operations/{accepted['operationId']}")
        assert response.headers["Location"] == location
        assert response.headers["operation-id"] == accepted["operationId"]
        operation = (await client.get(location.split("testserver", 1)[1])).json()
        assert_response_conforms(operation, "/SenderPools/Operations/{operationId}", "get")
        count = len(body.get("senders", []))
        assert operation["status"] == "COMPLETED"
        assert operation["stats"] == {"total": count, "queued": 0, "created": count, "failed": 0}
        [pool] = (
            await client.get("/v1/SenderPools", params={"operationId": accepted["operationId"]})
        ).json()["senderPools"]
        fetched = (await client.get(f"/v1/SenderPools/{pool['id']}")).json()
        assert_response_conforms(fetched, POOL, "get")
        assert fetched == pool
        assert pool["name"] == body["name"] and pool["tags"] == body["tags"]
        expected = sorted({s["senderId"] for s in body.get("senders", [])})
        assert await member_ids(client, pool["id"]) == expected


async def test_unknown_or_foreign_senders_refuse_the_whole_create(
    client: httpx.AsyncClient,
    stranger_client: httpx.AsyncClient,
    inventory: list[SenderRecord],
) -> None:
    theirs = (await stranger_client.get("/v1/Senders")).json()["senders"][0]["id"]
    body = {
        "name": "Mixed",
        "senders": [
            {"senderId": EXAMPLE_IDS[0]},
            {"senderId": theirs},
            {"senderId": "comms_sender_01h9krwprkeee8fzqspvwy6nq9"},
            {"senderId": "comms_sender_nope"},
        ],
        "tags": {"bad tag": "x"},
    }
    response = await client.post("/v1/SenderPools", json=body)
    assert response.status_code == 400
    found = problems(response)
    assert (20422, "$.senders[1].senderId") in found
    assert (20422, "$.senders[2].senderId") in found
    assert (20422, "$.senders[3].senderId") in found
    assert any(context and context.startswith("$.tags") for _, context in found)
    assert all(context != "$.senders[0].senderId" for _, context in found)
    assert (await client.get("/v1/SenderPools")).json()["senderPools"] == []
    assert (await client.get("/v1/SenderPools/Operations")).json()["operations"] == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": 5}, [(20422, "$.name")]),
        ({"name": "x" * 257}, [(20422, "$.name")]),
        ({"name": "a\u0000b"}, [(20422, "$.name")]),
        ({"senders": [{"senderId": 1}]}, [(20422, "$.senders[0].senderId")]),
        ({"tags": {str(i): "v" for i in range(11)}}, [(20422, "$.tags")]),
        ({"senders": [{"senderId": EXAMPLE_IDS[0]}, {}]}, [(20422, "$.senders[1].senderId")]),
    ],
)
async def test_create_refusals(
    client: httpx.AsyncClient,
    inventory: list[SenderRecord],
    body: dict[str, Any],
    expected: list[tuple[int, str]],
) -> None:
    response = await client.post("/v1/SenderPools", json=body)
    assert response.status_code == 400, response.text
    assert problems(response) == expected


async def test_tags_are_kept_as_given(client: httpx.AsyncClient) -> None:
    tags = {"channel": "sms", "status": "draft"}
    pool_id, _ = await create(client, {"name": "Lower", "tags": tags})
    assert (await client.get(f"/v1/SenderPools/{pool_id}")).json()["tags"] == tags
    await client.patch(f"/v1/SenderPools/{pool_id}", json={"tags": {"status": "live"}})
    assert (await client.get(f"/v1/SenderPools/{pool_id}")).json()["tags"] == {"status": "live"}


async def test_members_add_list_remove(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    pool_id, _ = await create(client, {"name": "Support"})
    for name, body in request_examples(f"{POOL}/Senders", "post").items():
        response = await client.post(f"/v1/SenderPools/{pool_id}/Senders", json=body)
        assert response.status_code == 202, (name, response.text)
        assert_response_conforms(response.json(), f"{POOL}/Senders", "post", "202")
        operation = (
            await client.get(f"/v1/SenderPools/Operations/{response.json()['operationId']}")
        ).json()
        assert operation["stats"]["created"] == operation["stats"]["total"] == len(body)
    assert await member_ids(client, pool_id) == sorted(EXAMPLE_IDS)
    assert await member_ids(client, pool_id, channel="RCS") == [EXAMPLE_IDS[2]]
    assert await member_ids(client, pool_id, status="DEACTIVATED") == []
    first = (
        await client.get(f"/v1/SenderPools/{pool_id}/Senders", params={"pageSize": "2"})
    ).json()
    rest = (
        await client.get(
            f"/v1/SenderPools/{pool_id}/Senders",
            params={"pageSize": "2", "pageToken": first["pagination"]["next"]},
        )
    ).json()
    assert sorted(s["id"] for s in first["senders"] + rest["senders"]) == sorted(EXAMPLE_IDS)
    assert rest["pagination"]["next"] is None

    path = f"/v1/SenderPools/{pool_id}/Senders/{EXAMPLE_IDS[0]}"
    removed = await client.delete(path)
    assert removed.status_code == 202
    assert_response_conforms(removed.json(), f"{POOL}/Senders/{{senderId}}", "delete", "202")
    assert removed.json()["resourceId"] == EXAMPLE_IDS[0]
    assert removed.headers["Location"] == removed.json()["resourceLocation"]
    assert await member_ids(client, pool_id) == sorted(EXAMPLE_IDS[1:])
    again = await client.delete(path)
    assert again.status_code == 404
    assert_conforms(again.json(), "TwilioErrors")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"senderId": EXAMPLE_IDS[0]}, [(20422, "$")]),
        ([], [(20422, "$")]),
        ([{"senderId": EXAMPLE_IDS[0]}, {}], [(20422, "$[1].senderId")]),
        (
            [{"senderId": "comms_sender_01h9krwprkeee8fzqspvwy6nq9"}, {"senderId": EXAMPLE_IDS[1]}],
            [(20422, "$[0].senderId")],
        ),
    ],
)
async def test_add_refusals_change_nothing(
    client: httpx.AsyncClient,
    inventory: list[SenderRecord],
    body: Any,
    expected: list[tuple[int, str]],
) -> None:
    pool_id, _ = await create(client, {"name": "Empty"})
    response = await client.post(f"/v1/SenderPools/{pool_id}/Senders", json=body)
    assert response.status_code == 400, response.text
    assert problems(response) == expected
    assert await member_ids(client, pool_id) == []
    assert len((await client.get("/v1/SenderPools/Operations")).json()["operations"]) == 1


async def test_update_and_delete(client: httpx.AsyncClient, inventory: list[SenderRecord]) -> None:
    pool_id, operation_id = await create(
        client, {"name": "Old", "tags": {"a": "1"}, "senders": [{"senderId": EXAMPLE_IDS[0]}]}
    )
    [example] = request_examples(POOL, "patch").values()
    response = await client.patch(f"/v1/SenderPools/{pool_id}", json=example)
    assert response.status_code == 202, response.text
    assert_response_conforms(response.json(), POOL, "patch", "202")
    assert response.json()["resourceId"] == pool_id
    pool = (await client.get(f"/v1/SenderPools/{pool_id}")).json()
    assert (pool["name"], pool["tags"]) == (example["name"], example["tags"])
    assert pool["updatedAt"] >= pool["createdAt"]
    renamed = await client.patch(f"/v1/SenderPools/{pool_id}", json={"name": "Only the name"})
    assert renamed.status_code == 202
    pool = (await client.get(f"/v1/SenderPools/{pool_id}")).json()
    assert (pool["name"], pool["tags"]) == ("Only the name", example["tags"])
    refused = await client.patch(f"/v1/SenderPools/{pool_id}", json={"name": None, "tags": []})
    assert sorted(problems(refused)) == [(20422, "$.name"), (20422, "$.tags")]

    deleted = await client.delete(f"/v1/SenderPools/{pool_id}")
    assert deleted.status_code == 202
    assert_response_conforms(deleted.json(), POOL, "delete", "202")
    for method, path in (
        ("GET", f"/v1/SenderPools/{pool_id}"),
        ("GET", f"/v1/SenderPools/{pool_id}/Senders"),
        ("DELETE", f"/v1/SenderPools/{pool_id}"),
        ("PATCH", f"/v1/SenderPools/{pool_id}"),
    ):
        gone = await client.request(method, path, json={})
        assert gone.status_code == 404, (method, path)
    assert (await client.get("/v1/SenderPools")).json()["senderPools"] == []
    # Its operations stay on record.
    assert (await client.get(f"/v1/SenderPools/Operations/{operation_id}")).status_code == 200


async def test_lists_filters_and_pages(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    created = [await create(client, {"name": f"Pool {i}"}) for i in range(5)]
    pool_ids = [p for p, _ in created]
    seen: list[str] = []
    token = None
    while True:
        params = {"pageSize": "2", **({"pageToken": token} if token else {})}
        page = (await client.get("/v1/SenderPools", params=params)).json()
        assert_response_conforms(page, "/SenderPools", "get")
        seen += [p["id"] for p in page["senderPools"]]
        token = page["pagination"]["next"]
        if token is None:
            break
    assert seen == pool_ids[::-1]
    operations = (await client.get("/v1/SenderPools/Operations", params={"pageSize": "3"})).json()
    assert_response_conforms(operations, "/SenderPools/Operations", "get")
    assert [o["id"] for o in operations["operations"]] == [o for _, o in created][::-1][:3]
    completed = await client.get("/v1/SenderPools/Operations", params={"status": "completed"})
    assert len(completed.json()["operations"]) == 5
    processing = await client.get("/v1/SenderPools/Operations", params={"status": "PROCESSING"})
    assert processing.json()["operations"] == []
    assert (await client.get("/v1/SenderPools", params={"endDate": "2020-01-01T00:00:00Z"})).json()[
        "senderPools"
    ] == []
    for path, params, context in (
        ("/v1/SenderPools/Operations", {"status": "SCHEDULED"}, "$.status"),
        ("/v1/SenderPools/Operations", {"pageSize": "1001"}, "$.pageSize"),
        ("/v1/SenderPools", {"operationId": "comms_operation_x"}, "$.operationId"),
        ("/v1/SenderPools", {"startDate": "2025-13-01T00:00:00Z"}, "$.startDate"),
        ("/v1/SenderPools/x/Senders", {"channel": "FAX"}, "$.channel"),
    ):
        response = await client.get(path, params=params)
        assert response.status_code == 400, (path, params)
        assert problems(response) == [(20422, context)]


async def test_accounts_never_touch_each_others_pools(
    client: httpx.AsyncClient,
    stranger_client: httpx.AsyncClient,
    inventory: list[SenderRecord],
) -> None:
    pool_id, operation_id = await create(
        client, {"name": "Mine", "senders": [{"senderId": EXAMPLE_IDS[0]}]}
    )
    theirs = (await stranger_client.get("/v1/Senders")).json()["senders"][0]["id"]
    attempts = [
        ("GET", f"/v1/SenderPools/{pool_id}", None),
        ("PATCH", f"/v1/SenderPools/{pool_id}", {"name": "Stolen"}),
        ("DELETE", f"/v1/SenderPools/{pool_id}", None),
        ("GET", f"/v1/SenderPools/{pool_id}/Senders", None),
        ("POST", f"/v1/SenderPools/{pool_id}/Senders", [{"senderId": theirs}]),
        ("DELETE", f"/v1/SenderPools/{pool_id}/Senders/{EXAMPLE_IDS[0]}", None),
        ("GET", f"/v1/SenderPools/Operations/{operation_id}", None),
    ]
    for method, path, body in attempts:
        response = await stranger_client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert_conforms(response.json(), "TwilioErrors")
    assert (await stranger_client.get("/v1/SenderPools")).json()["senderPools"] == []
    assert (await stranger_client.get("/v1/SenderPools/Operations")).json()["operations"] == []
    listed = await stranger_client.get("/v1/SenderPools", params={"operationId": operation_id})
    assert listed.json()["senderPools"] == []
    # Nothing changed for the owner.
    pool = (await client.get(f"/v1/SenderPools/{pool_id}")).json()
    assert pool["name"] == "Mine"
    assert await member_ids(client, pool_id) == [EXAMPLE_IDS[0]]
    # Nor can the owner add the stranger's sender.
    response = await client.post(f"/v1/SenderPools/{pool_id}/Senders", json=[{"senderId": theirs}])
    assert problems(response) == [(20422, "$[0].senderId")]


async def test_the_largest_requests(
    db: Database, client: httpx.AsyncClient, account: NewCredential
) -> None:
    """10,000 unknown ids: one 400 listing the first 1,000; 2,500 real ones (more than one
    id lookup's worth) all become members in one request."""
    unknown = [{"senderId": f"comms_sender_0{i:025d}"} for i in range(10_000)]
    response = await client.post("/v1/SenderPools", json={"name": "Big", "senders": unknown})
    assert response.status_code == 400
    found = problems(response)
    assert len(found) == 1000
    assert found[0] == (20422, "$.senders[0].senderId")
    many = [
        SenderRecord(
            sender_id(account.sid, ChannelType.SMS, f"+1415556{i:04d}"),
            account.sid,
            ChannelType.SMS,
            f"+1415556{i:04d}",
            "sandbox",
        )
        for i in range(2_500)
    ]
    await insert_many(db, many)
    pool_id, operation_id = await create(
        client, {"name": "Big", "senders": [{"senderId": s.id} for s in many]}
    )
    operation = (await client.get(f"/v1/SenderPools/Operations/{operation_id}")).json()
    assert operation["stats"]["created"] == 2_500
    page = (
        await client.get(f"/v1/SenderPools/{pool_id}/Senders", params={"pageSize": "1000"})
    ).json()
    assert len(page["senders"]) == 1000 and page["pagination"]["next"] is not None


async def test_concurrent_adds_of_one_sender_both_succeed(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    pool_id, _ = await create(client, {"name": "Race"})
    body = [{"senderId": EXAMPLE_IDS[0]}, {"senderId": EXAMPLE_IDS[1]}]
    path = f"/v1/SenderPools/{pool_id}/Senders"
    answers = await asyncio.gather(*(client.post(path, json=body) for _ in range(4)))
    assert [a.status_code for a in answers] == [202] * 4
    assert await member_ids(client, pool_id) == sorted(EXAMPLE_IDS[:2])


async def test_preview_serves_the_same_pools(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    response = await client.post("/preview/SenderPools", json={"name": "Preview"})
    assert response.json()["operationLocation"].startswith("http://testserver/preview/")
    [pool] = (await client.get("/v1/SenderPools")).json()["senderPools"]
    assert (await client.get(f"/preview/SenderPools/{pool['id']}")).json() == pool
