"""GET /v1/Messages and /v1/Messages/Operations: filters and keyset pagination."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from opencomms.domain import errors
from tests.api.conformance import assert_response_conforms
from tests.api.test_send import send


def recipients(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"address": f"+1415390{i:04d}", "channel": "PHONE"} for i in range(start, start + count)
    ]


async def list_ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/v1/Messages", params=params)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["messages"]]


async def test_pages_walk_every_message_once_newest_first(client: httpx.AsyncClient) -> None:
    operation = (await send(client, {"to": recipients(25), "content": {"text": "x"}})).json()
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"pageSize": "10", "operationId": operation["operationId"]}
        if token:
            params["pageToken"] = token
        page = (await client.get("/v1/Messages", params=params)).json()
        assert_response_conforms(page, "/Messages", "get")
        seen += [m["id"] for m in page["messages"]]
        again = (
            await client.get(
                "/v1/Messages", params={**params, "pageToken": page["pagination"]["self"]}
            )
        ).json()
        assert [m["id"] for m in again["messages"]] == [m["id"] for m in page["messages"]]
        token = page["pagination"]["next"]
        pages += 1
        if token is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 25
    assert seen == sorted(seen, reverse=True)


async def test_pages_are_stable_under_concurrent_inserts(client: httpx.AsyncClient) -> None:
    await send(client, {"to": recipients(6), "content": {"text": "x"}})
    first = (await client.get("/v1/Messages", params={"pageSize": "3"})).json()
    await send(client, {"to": recipients(5, 100), "content": {"text": "x"}})
    second = (
        await client.get(
            "/v1/Messages", params={"pageSize": "3", "pageToken": first["pagination"]["next"]}
        )
    ).json()
    first_ids = {m["id"] for m in first["messages"]}
    assert not first_ids & {m["id"] for m in second["messages"]}
    assert len(second["messages"]) == 3


async def test_filters(client: httpx.AsyncClient) -> None:
    tagged = {
        "from": {"address": "opencomms_sandbox_agent", "channel": "RCS"},
        "to": recipients(2),
        "content": {"text": "x"},
        "tags": {"region": "EMEA", "campaign": "BUY"},
    }
    first = (await send(client, tagged)).json()["operationId"]
    second = (
        await send(
            client,
            {
                "from": {"address": "+15005550006", "channel": "SMS"},
                "to": recipients(3),
                "content": {"text": "y"},
                "tags": {"region": "APAC"},
            },
        )
    ).json()["operationId"]
    assert len(await list_ids(client)) == 5
    assert len(await list_ids(client, operationId=first)) == 2
    assert len(await list_ids(client, tags="region:EMEA;")) == 2
    assert len(await list_ids(client, tags="region:EMEA;campaign:BUY;")) == 2
    assert await list_ids(client, tags="region:EMEA;campaign:SELL;") == []
    assert len(await list_ids(client, channel="RCS")) == 2
    assert len(await list_ids(client, channel="sms")) == 3
    assert len(await list_ids(client, status="QUEUED")) == 5
    assert await list_ids(client, status="DELIVERED") == []
    assert await list_ids(client, profile="mem_profile_01h9krwprkeee8fzqspvwy6nq8") == []
    assert await list_ids(client, sessionId="comms_session_01h9krwprkeee8fzqspvwy6nq8") == []
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    earlier = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert len(await list_ids(client, startDate=earlier, endDate=later)) == 5
    assert await list_ids(client, startDate=later) == []
    operations = (
        await client.get("/v1/Messages/Operations", params={"status": "PROCESSING"})
    ).json()
    assert_response_conforms(operations, "/Messages/Operations", "get")
    assert [o["id"] for o in operations["operations"]] == [second, first]


async def test_profile_filter_finds_profile_recipients(client: httpx.AsyncClient) -> None:
    profile = "mem_profile_01h9krwprkeee8fzqspvwy6nq8"
    body = {
        "to": [{"profileId": profile, "memoryStoreId": "mem_store_00000000000000000000000000"}],
        "content": {"text": "x"},
    }
    await send(client, body)
    assert len(await list_ids(client, profile=profile)) == 1


@pytest.mark.parametrize(
    ("params", "context"),
    [
        ({"pageSize": "0"}, "$.pageSize"),
        ({"pageSize": "1001"}, "$.pageSize"),
        ({"pageSize": "ten"}, "$.pageSize"),
        ({"pageToken": "garbage!"}, "$.pageToken"),
        ({"status": "LOST"}, "$.status"),
        ({"channel": "PIGEON"}, "$.channel"),
        ({"tags": "region=EMEA"}, "$.tags"),
        ({"startDate": "yesterday"}, "$.startDate"),
        ({"startDate": "2025-06-18T12:00:00Z", "endDate": "2025-06-17T12:00:00Z"}, "$.endDate"),
        ({"operationId": "op_1"}, "$.operationId"),
    ],
)
async def test_bad_query_parameters_get_400(
    client: httpx.AsyncClient, params: dict[str, str], context: str
) -> None:
    response = await client.get("/v1/Messages", params=params)
    assert response.status_code == 400
    assert [e["context"] for e in response.json()["errors"]] == [context]


async def test_operation_list_pages(client: httpx.AsyncClient) -> None:
    created = [
        (await send(client, {"to": recipients(1), "content": {"text": "x"}})).json()["operationId"]
        for _ in range(3)
    ]
    first = (await client.get("/v1/Messages/Operations", params={"pageSize": "2"})).json()
    rest = (
        await client.get(
            "/v1/Messages/Operations",
            params={"pageSize": "2", "pageToken": first["pagination"]["next"]},
        )
    ).json()
    listed = [o["id"] for o in first["operations"] + rest["operations"]]
    assert listed == list(reversed(created))
    assert rest["pagination"]["next"] is None


@pytest.mark.parametrize(
    "url",
    [
        "/v1/Messages?profile=mem_profile_65094md94gdmsbt695ea8tz98055mk3yvQ%00x",
        "/v1/Messages?operationId=comms_operation_01h9krwprkeee8fzqspvwy6nq8%00",
        "/v1/Messages/comms_message_01h9krwprkeee8fzqspvwy6nq8%00",
    ],
)
async def test_a_nul_in_the_path_or_query_is_a_400(client: httpx.AsyncClient, url: str) -> None:
    # PostgreSQL text cannot hold NUL: this was a 500 there (found by schemathesis).
    response = await client.get(url)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == errors.INVALID_PARAMETER
