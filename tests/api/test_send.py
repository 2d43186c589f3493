"""POST /v1/Messages: what is accepted, what is stored, and every way it is refused."""

import copy
from typing import Any

import httpx
import pytest

from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import DeclaredSender, sender_id
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from opencomms.store.tables import senders as senders_table
from tests.api.conformance import assert_conforms, assert_response_conforms, send_examples
from tests.dispatch.helpers import make_pool

SIMPLE = {"to": [{"address": "+14153902337", "channel": "PHONE"}], "content": {"text": "Hi"}}
SCHEDULED_EXAMPLE = "SendAScheduledSms"


async def send(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post("/v1/Messages", json=body)


async def messages_of(client: httpx.AsyncClient, operation_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while True:
        params = {"operationId": operation_id, "pageSize": "1000"}
        if token:
            params["pageToken"] = token
        page = (await client.get("/v1/Messages", params=params)).json()
        found += page["messages"]
        token = page["pagination"]["next"]
        if token is None:
            return found


def problems(response: httpx.Response) -> list[tuple[int, str | None]]:
    assert_conforms(response.json(), "TwilioErrors")
    return [(e["code"], e["context"]) for e in response.json()["errors"]]


async def test_accepts_and_answers_with_every_location(client: httpx.AsyncClient) -> None:
    response = await send(client, SIMPLE)
    assert response.status_code == 202
    body = response.json()
    assert_response_conforms(body, "/Messages", "post", "202")
    operation_id = body["operationId"]
    assert body["operationLocation"].endswith(f"/v1/Messages/Operations/{operation_id}")
    assert response.headers["location"] == body["operationLocation"]
    assert response.headers["operation-location"] == body["operationLocation"]
    assert response.headers["operation-id"] == operation_id
    assert response.headers["resource-location"].endswith(
        f"/v1/Messages?operationId={operation_id}"
    )
    operation = (await client.get(f"/v1/Messages/Operations/{operation_id}")).json()
    assert operation["status"] == "PROCESSING"
    assert operation["stats"]["queued"] == 1


def _named_field(example: dict[str, Any]) -> str | None:
    sender = example.get("from") or {}
    for key, field in (("senderId", "senderId"), ("address", "address"), ("senderPoolId", None)):
        if key in sender:
            return f"$.from.{field or key}"
    return None


@pytest.mark.parametrize("name", sorted(send_examples()))
async def test_every_spec_example_gets_what_its_data_demands(
    client: httpx.AsyncClient, name: str
) -> None:
    """The examples name senders this account does not have: refused on that field."""
    example = send_examples()[name]
    response = await send(client, example)
    named = _named_field(example)
    if named is not None:
        assert response.status_code == 400, response.text
        assert (21212, named) in problems(response)
        return
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("name", sorted(send_examples()))
async def test_every_spec_example_is_accepted_from_declared_senders(
    db: Database, account: NewCredential, client: httpx.AsyncClient, name: str
) -> None:
    example = copy.deepcopy(send_examples()[name])
    sender = example.get("from") or {}
    if "address" in sender:
        await declare(db, account.sid, sender["channel"], sender["address"])
    if "senderId" in sender:
        sender["senderId"] = sender_id(account.sid, "SMS", "+15005550006")
    if "senderPoolId" in sender:
        sender["senderPoolId"] = await make_pool(db, account=account.sid)
    response = await send(client, example)
    if name == SCHEDULED_EXAMPLE:
        # Its sendAt is years ahead; the 30-day rule of decision 7 refuses it.
        assert response.status_code == 400
        assert problems(response) == [(35114, "$.schedule.sendAt[0]")]
        return
    assert response.status_code == 202, response.text
    messages = await messages_of(client, response.json()["operationId"])
    assert len(messages) == len(example["to"])
    for message in messages:
        assert_conforms(
            message["from"],
            "MessageSender" if "senderPoolId" not in sender else "MessageSenderAndPool",
        )


async def declare(db: Database, account_sid: str, channel: str, address: str) -> None:
    """A sender of this account, as a `[[senders]]` entry would make it."""
    record = DeclaredSender(ChannelType(channel), address, "sandbox").record(account_sid)
    async with db.write() as conn:
        await conn.execute(
            senders_table.insert().values(
                id=record.id,
                account_sid=account_sid,
                channel=channel,
                address=address,
                route="sandbox",
                mps=0,
                status="ACTIVATED",
                tags="{}",
                created_at=0,
                updated_at=0,
            )
        )


async def test_preview_prefix_serves_the_same_api(client: httpx.AsyncClient) -> None:
    response = await client.post("/preview/Messages", json=SIMPLE)
    assert response.status_code == 202
    assert "/preview/Messages/Operations/" in response.json()["operationLocation"]
    fetched = await client.get(
        response.json()["operationLocation"].replace("http://testserver", "")
    )
    assert fetched.status_code == 200


async def test_ten_thousand_recipients_are_all_stored(client: httpx.AsyncClient) -> None:
    recipients = [
        {"address": f"+1206555{i:04d}", "channel": "PHONE", "variables": {"n": str(i)}}
        for i in range(10_000)
    ]
    response = await send(client, {"to": recipients, "content": {"text": "#{{ n }}"}})
    assert response.status_code == 202
    operation_id = response.json()["operationId"]
    stats = (await client.get(f"/v1/Messages/Operations/{operation_id}")).json()["stats"]
    assert stats["total"] == stats["recipients"] == stats["queued"] == 10_000
    messages = await messages_of(client, operation_id)
    assert {m["to"][0]["address"] for m in messages} == {r["address"] for r in recipients}


async def test_ten_thousand_and_one_recipients_are_refused(client: httpx.AsyncClient) -> None:
    recipients = [{"address": "+14153902337", "channel": "PHONE"}] * 10_001
    response = await send(client, {"to": recipients, "content": {"text": "x"}})
    assert response.status_code == 400
    assert problems(response) == [(20422, "$.to")]


async def test_every_problem_is_reported_at_once(client: httpx.AsyncClient) -> None:
    body = {
        "to": [
            {"address": "+14153902337", "channel": "PHONE"},
            {"address": "4153902337", "channel": "PHONE"},
            {"address": "+14153902337", "channel": "PIGEON"},
            {"address": "+14153902337", "channel": "PHONE", "extra": 1},
        ],
        "content": {"text": "x" * 1601},
        "tags": {"bad key": "v"},
    }
    response = await send(client, body)
    assert response.status_code == 400
    found = problems(response)
    assert (21614, "$.to[1].address") in found
    assert (20422, "$.to[2].channel") in found
    assert (20001, "$.to[3].extra") in found
    assert (21617, "$.content.text") in found
    assert (20422, "$.tags.bad key") in found


async def test_connected_addresses_are_checked_each(client: httpx.AsyncClient) -> None:
    body = {
        "to": [
            {
                "addresses": [
                    {"address": "+14153902337", "channel": "WHATSAPP"},
                    {"address": "+1", "channel": "PHONE"},
                ]
            }
        ],
        "content": {"text": "x"},
    }
    response = await send(client, body)
    assert problems(response) == [(21614, "$.to[0].addresses[1].address")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"text": ""}, (20422, "$.content.text")),
        ({"text": "x", "html": "y"}, (20001, "$.content.html")),
        ({"media": [{"url": "ftp://example.com/a.png"}]}, (21620, "$.content.media[0].url")),
        ({"contentId": "nope"}, (20422, "$.content.contentId")),
        ({"modules": []}, (20422, "$.content.modules")),
        ({}, (20422, "$.content")),
    ],
)
async def test_content_rules(
    client: httpx.AsyncClient, content: dict[str, Any], expected: tuple[int, str]
) -> None:
    response = await send(client, {**SIMPLE, "content": content})
    assert response.status_code == 400
    assert expected in problems(response)


async def test_liquid_that_does_not_parse_points_at_the_field(client: httpx.AsyncClient) -> None:
    response = await send(client, {**SIMPLE, "content": {"text": "Hi {{ name "}})
    assert problems(response) == [(20422, "$.content.text")]


async def test_missing_variable_names_the_recipient(client: httpx.AsyncClient) -> None:
    body = {
        "to": [
            {"address": "+14153902337", "channel": "PHONE", "variables": {"firstName": "A"}},
            {"address": "+14153902338", "channel": "PHONE", "variables": {}},
            {"address": "+14153902339", "channel": "PHONE", "variables": {"firstName": "C"}},
        ],
        "content": {"text": "Hi {{ firstName }}, {{ city | default: 'friend' }}"},
    }
    response = await send(client, body)
    assert problems(response) == [(20422, "$.to[1].variables.firstName")]


async def test_liquid_tags_are_checked_after_rendering(client: httpx.AsyncClient) -> None:
    body = {
        "to": [
            {"address": "+14153902337", "channel": "PHONE", "variables": {"region": "EMEA"}},
            {
                "address": "+14153902338",
                "channel": "PHONE",
                "variables": {"region": "North America"},
            },
        ],
        "content": {"text": "x"},
        "tags": {"region": "{{ region }}"},
    }
    response = await send(client, body)
    assert response.status_code == 400
    assert [e["context"] for e in response.json()["errors"]] == ["$.tags"]
    assert "Recipient 1" in response.json()["errors"][0]["message"]
    body["to"] = body["to"][:1]
    accepted = await send(client, body)
    assert accepted.status_code == 202
    [message] = await messages_of(client, accepted.json()["operationId"])
    assert message["tags"] == {"region": "EMEA"}


async def test_enums_are_accepted_in_any_case(client: httpx.AsyncClient) -> None:
    body = {
        "from": {"address": "+15005550006", "channel": "sms"},
        "to": [{"address": "+14153902337", "channel": "phone"}],
        "content": {"text": "x"},
    }
    response = await send(client, body)
    assert response.status_code == 202
    [message] = await messages_of(client, response.json()["operationId"])
    assert message["from"]["channel"] == "SMS"
    assert message["to"] == [{"address": "+14153902337", "channel": "PHONE"}]


async def test_profile_recipients_are_unaddressable(client: httpx.AsyncClient) -> None:
    example = send_examples()["SendAMessageWithJustRecipientAndContent"]
    operation_id = (await send(client, example)).json()["operationId"]
    operation = (await client.get(f"/v1/Messages/Operations/{operation_id}")).json()
    assert_conforms(operation, "MessageOperation")
    assert operation["status"] == "COMPLETED"
    assert operation["stats"] == {
        "total": 1,
        "recipients": 1,
        "attempts": 0,
        "unaddressable": 1,
        "queued": 0,
        "sent": 0,
        "scheduled": 0,
        "delivered": 0,
        "read": 0,
        "undelivered": 0,
        "failed": 0,
        "canceled": 0,
    }


async def test_a_refused_request_writes_nothing(client: httpx.AsyncClient) -> None:
    good = {"address": "+14153902337", "channel": "PHONE"}
    body = {"to": [good] * 50 + [{"address": "bad", "channel": "PHONE"}], "content": {"text": "x"}}
    assert (await send(client, body)).status_code == 400
    listed = (await client.get("/v1/Messages")).json()
    assert listed["messages"] == []
    assert (await client.get("/v1/Messages/Operations")).json()["operations"] == []


async def test_malformed_bodies_get_clean_errors(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    broken = await client.post("/v1/Messages", content=b"{not json", headers=headers)
    assert broken.status_code == 400
    assert problems(broken) == [(20400, None)]
    not_object = await client.post("/v1/Messages", content=b"[1]", headers=headers)
    assert problems(not_object) == [(20400, "$")]
    missing = await send(client, {})
    assert set(problems(missing)) == {(20422, "$.to"), (20422, "$.content")}
    wrong_type = await client.post(
        "/v1/Messages",
        content=b"to=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert wrong_type.status_code == 415
    assert problems(wrong_type) == [(20415, None)]


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    big = b'{"to": [], "content": {"text": "' + b"x" * (21 * 1024 * 1024) + b'"}}'
    response = await client.post(
        "/v1/Messages", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert problems(response) == [(20413, None)]


async def test_unknown_paths_and_methods(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/Nothing")
    assert missing.status_code == 404
    assert problems(missing) == [(20404, None)]
    wrong = await client.delete("/v1/Messages")
    assert wrong.status_code == 405
    assert problems(wrong) == [(20004, None)]


def _scheduled(send_at: str, address: str = "+14153902337") -> dict[str, Any]:
    body = copy.deepcopy(SIMPLE)
    body["to"][0]["address"] = address
    body["schedule"] = {"sendAt": [send_at]}
    return body
