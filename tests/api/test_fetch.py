"""Fetching one message or operation, canceling, and seeking."""

from datetime import UTC, datetime, timedelta

import httpx

from tests.api.conformance import assert_conforms, assert_response_conforms
from tests.api.test_send import _scheduled, send


async def test_message_content_is_resolved_for_its_recipient(client: httpx.AsyncClient) -> None:
    body = {
        "to": [
            {"address": "+14153902337", "channel": "PHONE", "variables": {"name": "Ada"}},
            {"address": "+14153902338", "channel": "PHONE"},
        ],
        "content": {
            "text": "Hi {{ name | default: 'there' }}!",
            "media": [{"url": "https://example.com/{{ name | default: 'x' }}.png"}],
        },
    }
    operation_id = (await send(client, body)).json()["operationId"]
    listed = (await client.get("/v1/Messages", params={"operationId": operation_id})).json()
    by_address = {m["to"][0]["address"]: m["id"] for m in listed["messages"]}
    ada = (await client.get(f"/v1/Messages/{by_address['+14153902337']}")).json()
    other = (await client.get(f"/v1/Messages/{by_address['+14153902338']}")).json()
    assert_response_conforms(ada, "/Messages/{messageId}", "get")
    assert ada["content"] == {"text": "Hi Ada!", "media": [{"url": "https://example.com/Ada.png"}]}
    assert other["content"]["text"] == "Hi there!"
    assert ada["attempts"] == []
    assert ada["status"] == "QUEUED"
    assert ada["related"][0] == {
        "name": "OPERATION",
        "id": operation_id,
        "uri": f"http://testserver/v1/Messages/Operations/{operation_id}",
    }


async def test_unknown_ids_answer_404(client: httpx.AsyncClient) -> None:
    for path in (
        "/v1/Messages/comms_message_01h9krwprkeee8fzqspvwy6nq8",
        "/v1/Messages/Operations/comms_operation_01h9krwprkeee8fzqspvwy6nq8",
        "/v1/Messages/Seek/SM0123",
    ):
        response = await client.get(path)
        assert response.status_code == 404
        assert_conforms(response.json(), "TwilioErrors")
    cancel = await client.post(
        "/v1/Messages/Operations/comms_operation_01h9krwprkeee8fzqspvwy6nq8/Cancel"
    )
    assert cancel.status_code == 404


async def test_scheduled_sends_and_cancel(client: httpx.AsyncClient) -> None:
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    response = await send(client, _scheduled(at.isoformat().replace("+00:00", "Z")))
    assert response.status_code == 202
    operation_id = response.json()["operationId"]
    operation = (await client.get(f"/v1/Messages/Operations/{operation_id}")).json()
    assert operation["status"] == "SCHEDULED"
    assert operation["stats"]["scheduled"] == 1
    [message] = (await client.get("/v1/Messages", params={"operationId": operation_id})).json()[
        "messages"
    ]
    assert message["status"] == "SCHEDULED"
    assert message["scheduledFor"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    canceled = await client.post(f"/v1/Messages/Operations/{operation_id}/Cancel")
    assert canceled.status_code == 202
    assert canceled.json()["operationId"] == operation_id
    operation = (await client.get(f"/v1/Messages/Operations/{operation_id}")).json()
    assert operation["status"] == "CANCELED"
    assert operation["stats"]["canceled"] == 1
    assert operation["stats"]["scheduled"] == 0


async def test_local_schedule_times_follow_the_number(client: httpx.AsyncClient) -> None:
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    # +1 206 is Seattle (UTC-8 in winter, UTC-7 in summer); +44 is London.
    seattle = await send(client, _scheduled(f"{day}T09:00:00", "+12065551234"))
    london = await send(client, _scheduled(f"{day}T09:00:00", "+447700900123"))
    times = []
    for response in (seattle, london):
        operation_id = response.json()["operationId"]
        [message] = (await client.get("/v1/Messages", params={"operationId": operation_id})).json()[
            "messages"
        ]
        times.append(datetime.fromisoformat(message["scheduledFor"].replace("Z", "+00:00")))
    assert timedelta(hours=7) <= times[0] - times[1] <= timedelta(hours=8)


async def test_schedule_window(client: httpx.AsyncClient) -> None:
    too_far = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for when in (too_far, past, "next tuesday", "2030-01-01"):
        response = await send(client, _scheduled(when))
        assert response.status_code == 400, when
        assert response.json()["errors"][0]["code"] == 35114
        assert response.json()["errors"][0]["context"] == "$.schedule.sendAt[0]"
