"""GET /v1/Senders, /Senders/{id}, POST /Senders/Search and /Senders/Resolve."""

from typing import Any

import httpx
import pytest

from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import SenderRecord, sender_id
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from tests.api.conformance import assert_conforms, assert_response_conforms
from tests.api.inventory import EXAMPLE_IDS, declare, declared, request_examples
from tests.api.test_send import problems


async def test_list_fetch_and_filters(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    page = (await client.get("/v1/Senders")).json()
    assert_response_conforms(page, "/Senders", "get")
    assert {s["id"] for s in page["senders"]} == {r.id for r in inventory}
    assert page["pagination"]["next"] is None
    one = next(s for s in page["senders"] if s["address"] == "+14153902337")
    assert one == {
        "id": EXAMPLE_IDS[0],
        "displayName": "Cool Support",
        "channel": "SMS",
        "address": "+14153902337",
        "status": "ACTIVATED",
        "tags": {"team": "support"},
        "createdAt": one["createdAt"],
        "updatedAt": one["updatedAt"],
    }
    fetched = await client.get(f"/preview/Senders/{EXAMPLE_IDS[0]}")
    assert fetched.status_code == 200
    assert_response_conforms(fetched.json(), "/Senders/{senderId}", "get")
    assert fetched.json() == one

    async def ids(**params: str) -> set[str]:
        response = await client.get("/v1/Senders", params=params)
        assert response.status_code == 200, response.text
        return {s["address"] for s in response.json()["senders"]}

    assert await ids(channel="SMS") == {"+14153902337", "+447700900123"}
    assert await ids(channel="rcs") == {"coolsupport_abc123_agent"}
    assert await ids(channel="PUSH") == set()
    assert len(await ids(status="ACTIVATED")) == 5
    assert await ids(status="DEACTIVATED") == set()
    assert len(await ids(startDate="2020-01-01T00:00:00Z")) == 5
    assert await ids(endDate="2020-01-01T00:00:00Z") == set()


async def test_a_sender_gone_from_the_config_is_deactivated(
    db: Database, client: httpx.AsyncClient, account: NewCredential
) -> None:
    records = declared(account.sid)
    await declare(db, records)
    await declare(db, records[1:])
    gone = (await client.get(f"/v1/Senders/{records[0].id}")).json()
    assert gone["status"] == "DEACTIVATED"
    page = (await client.get("/v1/Senders", params={"status": "deactivated"})).json()
    assert [s["id"] for s in page["senders"]] == [records[0].id]


async def test_pages_walk_every_sender_once(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    seen: list[str] = []
    token = None
    while True:
        params = {"pageSize": "2", **({"pageToken": token} if token else {})}
        page = (await client.get("/v1/Senders", params=params)).json()
        assert_response_conforms(page, "/Senders", "get")
        again = (
            await client.get(
                "/v1/Senders", params={"pageSize": "2", "pageToken": page["pagination"]["self"]}
            )
        ).json()
        assert again["senders"] == page["senders"]
        seen += [s["id"] for s in page["senders"]]
        token = page["pagination"]["next"]
        if token is None:
            break
    assert sorted(seen) == sorted(r.id for r in inventory)
    assert len(seen) == len(set(seen))


async def test_accounts_never_see_each_others_senders(
    client: httpx.AsyncClient,
    stranger_client: httpx.AsyncClient,
    inventory: list[SenderRecord],
    stranger: NewCredential,
) -> None:
    theirs = (await stranger_client.get("/v1/Senders")).json()["senders"]
    assert {s["id"] for s in theirs} == {r.id for r in declared(stranger.sid)}
    assert not {s["id"] for s in theirs} & {r.id for r in inventory}
    for record in inventory:
        assert (await stranger_client.get(f"/v1/Senders/{record.id}")).status_code == 404
    search = await stranger_client.post(
        "/v1/Senders/Search", json={"address": "+14153902337", "channel": "SMS"}
    )
    assert [s["id"] for s in search.json()["senders"]] == [
        sender_id(stranger.sid, ChannelType.SMS, "+14153902337")
    ]


@pytest.mark.parametrize(
    ("path", "params", "context"),
    [
        ("/v1/Senders/comms_sender_01h9krwprkeee8fzqspvwy6nq9", {}, None),
        ("/v1/Senders/not-an-id", {}, None),
        ("/v1/Senders/comms_sender_01h9krwprkeee8fzqspvwy6nq8-and-more", {}, None),
        ("/v1/Senders", {"channel": "PIGEON"}, "$.channel"),
        ("/v1/Senders", {"status": "LOST"}, "$.status"),
        ("/v1/Senders", {"pageSize": "0"}, "$.pageSize"),
        ("/v1/Senders", {"pageToken": "garbage!"}, "$.pageToken"),
        ("/v1/Senders", {"startDate": "yesterday"}, "$.startDate"),
    ],
)
async def test_bad_reads_are_refused(
    client: httpx.AsyncClient,
    inventory: list[SenderRecord],
    path: str,
    params: dict[str, str],
    context: str | None,
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == (404 if context is None else 400), response.text
    if context is not None:
        assert (20422, context) in problems(response)
    assert_conforms(response.json(), "TwilioErrors")


async def test_search_examples_and_filters(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    for body in request_examples("/Senders/Search", "post").values():
        response = await client.post("/v1/Senders/Search", json=body)
        assert response.status_code == 200, response.text
        assert_response_conforms(response.json(), "/Senders/Search", "post")
        assert [s["id"] for s in response.json()["senders"]] == [EXAMPLE_IDS[0]]

    async def found(body: dict[str, Any]) -> list[str]:
        response = await client.post("/v1/Senders/Search", json=body)
        assert response.status_code == 200, response.text
        return [s["address"] for s in response.json()["senders"]]

    assert await found({"address": "+14153902337", "channel": "sms"}) == ["+14153902337"]
    assert await found({"address": "+14153902337", "channel": "RCS"}) == []
    assert await found({"address": "+14153902337", "channel": "SMS", "status": "DEACTIVATED"}) == []
    assert await found({"address": "+19999999999", "channel": "SMS", "pageSize": 1}) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"channel": "SMS"}, [(20422, "$.address")]),
        ({"address": "+14153902337"}, [(20422, "$.channel")]),
        (
            {"address": "x", "channel": "FAX", "pageSize": 0},
            [(20422, "$.channel"), (20422, "$.pageSize")],
        ),
        ({"address": "x\u0000", "channel": "SMS"}, [(20422, "$.address")]),
        ({"address": "x", "channel": "SMS", "pageToken": "garbage!"}, [(20422, "$.pageToken")]),
    ],
)
async def test_search_refusals(
    client: httpx.AsyncClient, body: dict[str, Any], expected: list[tuple[int, str]]
) -> None:
    response = await client.post("/v1/Senders/Search", json=body)
    assert response.status_code == 400
    assert sorted(problems(response)) == sorted(expected)


async def test_search_needs_a_json_object(client: httpx.AsyncClient) -> None:
    for content in (b"[1]", b"{not json"):
        response = await client.post(
            "/v1/Senders/Search", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert problems(response)[0][0] == 20400


async def resolve(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> list[tuple[str, str, str, int]]:
    response = await client.post("/v1/Senders/Resolve", json=body)
    assert response.status_code == 200, response.text
    assert_response_conforms(response.json(), "/Senders/Resolve", "post")
    return [
        (r["from"]["address"], r["from"]["channel"], r["to"]["address"], r["priority"])
        for r in response.json()["results"]
    ]


async def test_resolve_ranks_richest_channels_first(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    example = request_examples("/Senders/Resolve", "post")["MultipleAddresses"]
    assert await resolve(client, example) == [
        ("coolsupport_abc123_agent", "RCS", "+14153902337", 0),
        ("+15264013448", "WHATSAPP", "+14153902337", 1),
        # A sender of the recipient's own country comes first.
        ("+14153902337", "SMS", "+14153902337", 2),
        ("+447700900123", "SMS", "+14153902337", 3),
        ("support@example.com", "EMAIL", "davidpletnjov@example.com", 4),
    ]
    uk = {"recipientAddresses": [{"address": "+447700900999", "channel": "phone"}]}
    assert [r[0] for r in await resolve(client, uk)] == [
        "coolsupport_abc123_agent",
        "+447700900123",
        "+14153902337",
    ]


async def test_resolve_channel_control(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    person = {
        "recipientAddresses": [
            {"address": "+14155550100", "channel": "PHONE"},
            {"address": "+14155550100", "channel": "WHATSAPP"},
        ]
    }
    only_sms = {**person, "channels": {"filterIn": ["sms"]}}
    assert [r[1] for r in await resolve(client, only_sms)] == ["SMS", "SMS"]
    sms_first = {
        **person,
        "channels": {
            "priority": [{"channel": "SMS", "priority": 0}, {"channel": "WHATSAPP", "priority": 1}]
        },
    }
    assert [r[1] for r in await resolve(client, sms_first)] == ["SMS", "SMS", "WHATSAPP", "RCS"]
    assert [r[3] for r in await resolve(client, sms_first)] == [0, 1, 2, 3]
    nobody = {"recipientAddresses": [{"address": "tok", "channel": "PUSH"}]}
    assert await resolve(client, nobody) == []


async def test_resolve_with_a_sender_address_or_a_pool(
    db: Database, client: httpx.AsyncClient, inventory: list[SenderRecord], account: NewCredential
) -> None:
    person = [
        {"address": "+14155550100", "channel": "PHONE"},
        {"address": "ada@example.com", "channel": "EMAIL"},
    ]
    by_address = {
        "recipientAddresses": person,
        "senderAddresses": {"address": "+447700900123", "channel": "SMS"},
    }
    assert await resolve(client, by_address) == [("+447700900123", "SMS", "+14155550100", 0)]
    by_email = {
        "recipientAddresses": person,
        "senderAddresses": {"address": "Support@Example.com", "name": "Support"},
    }
    assert await resolve(client, by_email) == [
        ("support@example.com", "EMAIL", "ada@example.com", 0)
    ]
    created = await client.post(
        "/v1/SenderPools", json={"name": "UK", "senders": [{"senderId": EXAMPLE_IDS[1]}]}
    )
    pool_id = (
        await client.get(f"/v1/SenderPools?operationId={created.json()['operationId']}")
    ).json()["senderPools"][0]["id"]
    pooled = {"senderPoolId": pool_id, "recipientAddresses": person}
    assert await resolve(client, pooled) == [("+447700900123", "SMS", "+14155550100", 0)]
    # A deactivated member is no longer offered.
    await declare(db, [r for r in declared(account.sid, examples=True) if r.id != EXAMPLE_IDS[1]])
    assert await resolve(client, pooled) == []


async def test_resolve_returns_at_most_ten(
    db: Database, client: httpx.AsyncClient, account: NewCredential
) -> None:
    many = [
        SenderRecord(
            sender_id(account.sid, ChannelType.SMS, f"+1415555{i:04d}"),
            account.sid,
            ChannelType.SMS,
            f"+1415555{i:04d}",
            "sandbox",
        )
        for i in range(12)
    ]
    await declare(db, many)
    found = await resolve(
        client, {"recipientAddresses": [{"address": "+14155550100", "channel": "PHONE"}]}
    )
    assert [r[3] for r in found] == list(range(10))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, [(20422, "$")]),
        ({"recipientAddresses": []}, [(20422, "$.recipientAddresses")]),
        (
            {
                "recipientAddresses": [
                    {"address": "4153902337", "channel": "PHONE"},
                    {"address": "+1415", "channel": "WHATSAPP"},
                ]
            },
            [
                (21614, "$.recipientAddresses[0].address"),
                (21614, "$.recipientAddresses[1].address"),
            ],
        ),
        (
            {
                "recipientAddresses": [
                    {"address": "+14153902337", "channel": "FAX"},
                    {"address": "12", "channel": "PHONE"},
                ]
            },
            [
                (20422, "$.recipientAddresses[0].channel"),
                (21614, "$.recipientAddresses[1].address"),
            ],
        ),
        (
            {
                "senderPoolId": "comms_senderpool_01h9krwprkeee8fzqspvwy6nq8",
                "recipientAddresses": [{"address": "+14153902337", "channel": "PHONE"}],
            },
            [(20422, "$.senderPoolId")],
        ),
        (
            {
                "recipientAddresses": [{"address": "+14153902337", "channel": "PHONE"}],
                "senderAddresses": {"address": "+10000000000", "channel": "SMS"},
            },
            [(20422, "$.senderAddresses")],
        ),
        (
            {
                "recipientAddresses": [{"address": "+14153902337", "channel": "PHONE"}],
                "senderAddresses": {"fcm": "comms_credential_01h9krwprkeee8fzqspvwy6nq8"},
            },
            [(20422, "$.senderAddresses")],
        ),
        (
            {
                "senderPoolId": "comms_senderpool_01h9krwprkeee8fzqspvwy6nq8",
                "recipientAddresses": [{"address": "+14153902337", "channel": "PHONE"}],
                "senderAddresses": {"address": "+14153902337", "channel": "SMS"},
            },
            [(20422, "$.senderAddresses"), (20422, "$.senderPoolId")],
        ),
        (
            {
                "recipientAddresses": [{"address": "+14153902337", "channel": "PHONE"}],
                "senderAddresses": {"address": "+14153902337", "channel": "SMS", "name": "x"},
            },
            [(20422, "$.senderAddresses")],
        ),
        (
            {
                "recipientAddresses": {"address": "+14153902337"},
                "senderAddresses": {"address": 5, "channel": "RCS"},
                "channels": {"priority": 966, "filterIn": "SMS"},
            },
            [
                (20422, "$.channels.filterIn"),
                (20422, "$.channels.priority"),
                (20422, "$.recipientAddresses"),
                (20422, "$.senderAddresses.address"),
            ],
        ),
    ],
)
async def test_resolve_refusals(
    client: httpx.AsyncClient,
    inventory: list[SenderRecord],
    body: dict[str, Any],
    expected: list[tuple[int, str]],
) -> None:
    response = await client.post("/v1/Senders/Resolve", json=body)
    assert response.status_code == 400, response.text
    assert sorted(problems(response)) == sorted(expected)


async def test_resolve_pool_example_needs_a_pool_of_the_caller(
    client: httpx.AsyncClient, inventory: list[SenderRecord]
) -> None:
    """The spec's pool example names a pool id no account has: its own data demands a 400."""
    example = request_examples("/Senders/Resolve", "post")["UsingASenderPool"]
    response = await client.post("/v1/Senders/Resolve", json=example)
    assert response.status_code == 400
    assert problems(response) == [(20422, "$.senderPoolId")]
