"""The Emails API: send, list, fetch, delete, operations; on SQLite and PostgreSQL."""

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from opencomms.api import spec
from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import SenderRecord, sender_id
from opencomms.store import senders
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from opencomms.store.tables import attempts, messages
from tests.api.conformance import assert_conforms, assert_response_conforms

FROM = {"address": "support@example.com", "name": "Cool Co Support"}
SIMPLE = {
    "from": FROM,
    "to": [{"address": "bob@example.com", "name": "Bob Smith"}],
    "content": {"subject": "Hi", "html": "<p>Hi <b>Bob</b></p>"},
}
SCHEDULED_EXAMPLE = "SendAScheduledEmail"


def examples() -> dict[str, dict[str, Any]]:
    operation = spec.document()["paths"]["/Emails"]["post"]
    found = operation["requestBody"]["content"]["application/json"]["examples"]
    return {name: example["value"] for name, example in found.items()}


async def send(client: httpx.AsyncClient, body: Any, prefix: str = "/v1") -> httpx.Response:
    return await client.post(f"{prefix}/Emails", json=body)


async def emails_of(client: httpx.AsyncClient, operation_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while True:
        params = {"operationId": operation_id, "pageSize": "1000"}
        if token:
            params["pageToken"] = token
        page = (await client.get("/v1/Emails", params=params)).json()
        assert_response_conforms(page, "/Emails", "get")
        found += page["emails"]
        token = page["pagination"]["next"]
        if token is None:
            return found


def problems(response: httpx.Response) -> list[tuple[int, str | None]]:
    assert response.status_code == 400, response.text
    assert_conforms(response.json(), "TwilioErrors")
    return [(e["code"], e["context"]) for e in response.json()["errors"]]


async def test_accepts_and_answers_with_every_location(client: httpx.AsyncClient) -> None:
    response = await send(client, SIMPLE)
    assert response.status_code == 202, response.text
    body = response.json()
    assert_response_conforms(body, "/Emails", "post", "202")
    operation_id = body["operationId"]
    assert body["operationLocation"] == f"http://testserver/v1/Emails/Operations/{operation_id}"
    assert response.headers["location"] == body["operationLocation"]
    assert response.headers["operation-id"] == operation_id
    assert response.headers["resource-location"].endswith(f"/v1/Emails?operationId={operation_id}")
    operation = (await client.get(f"/v1/Emails/Operations/{operation_id}")).json()
    assert_response_conforms(operation, "/Emails/Operations/{operationId}", "get")
    assert operation["status"] == "PROCESSING"
    assert operation["stats"]["queued"] == operation["stats"]["total"] == 1


@pytest.mark.parametrize("name", sorted(examples()))
async def test_every_spec_example_is_accepted(client: httpx.AsyncClient, name: str) -> None:
    response = await send(client, examples()[name])
    if name == SCHEDULED_EXAMPLE:
        # Its sendAt is years in the past; the schedule window of decision 7 refuses it.
        assert problems(response) == [(35114, "$.schedule.sendAt[0]")]
        return
    assert response.status_code == 202, response.text
    listed = await emails_of(client, response.json()["operationId"])
    assert len(listed) == len(examples()[name]["to"])
    fetched = (await client.get(f"/v1/Emails/{listed[0]['id']}")).json()
    assert_response_conforms(fetched, "/Emails/{emailId}", "get")


async def test_content_is_personalized_per_recipient_and_text_derived(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "from": FROM,
        "to": [
            {"address": "jane@example.com", "name": "Jane", "variables": {"first": "Jane"}},
            {"address": "john@example.com", "variables": {"first": "John", "tier": "gold"}},
        ],
        "content": {
            "subject": "Hi {{ first }}",
            "html": "<p>Hello <b>{{ first }}</b></p><p>Tier: {{ tier | default: 'none' }}</p>",
            "headers": {"X-Customer": "{{ first }}"},
            "attachments": [
                {
                    "filename": "{{ first }}.txt",
                    "contentType": "text/plain",
                    "content": base64.b64encode(b"hello").decode(),
                }
            ],
        },
        "tags": {"who": "{{ first }}"},
        "ipPoolName": "pool-{{ first }}",
    }
    response = await send(client, body)
    assert response.status_code == 202, response.text
    listed = await emails_of(client, response.json()["operationId"])
    by_to = {e["to"][0]["address"]: e for e in listed}
    assert by_to["jane@example.com"]["to"] == [{"address": "jane@example.com", "name": "Jane"}]
    assert by_to["john@example.com"]["from"] == FROM
    assert by_to["john@example.com"]["tags"] == {"who": "John"}
    john = (await client.get(f"/v1/Emails/{by_to['john@example.com']['id']}")).json()
    assert_response_conforms(john, "/Emails/{emailId}", "get")
    assert john["content"]["subject"] == "Hi John"
    assert john["content"]["html"] == "<p>Hello <b>John</b></p><p>Tier: gold</p>"
    assert john["content"]["text"] == "Hello John\n\nTier: gold"
    [attachment] = john["content"]["attachments"]
    assert (attachment["fileName"], attachment["fileSize"], attachment["mimeType"]) == (
        "John.txt",
        5,
        "text/plain",
    )


async def test_every_problem_is_reported_at_once_and_nothing_is_written(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "from": {"address": "not-an-address", "name": "X"},
        "to": [
            {"address": "ok@example.com"},
            {"address": "bad@@example.com"},
            {"address": "jöhn@example.com"},
            {"address": "ok2@example.com", "variables": {"other": "x"}},
        ],
        "content": {
            "subject": "Hi {{ first }}",
            "html": "<p>{% if %}</p>",
            "headers": {"Subject": "override", "X-Ok": "fine", "Bad Name": "x"},
            "attachments": [{"filename": "a", "contentType": "nope", "content": "***"}],
        },
        "tags": {"bad tag": "x"},
    }
    found = problems(await send(client, body))
    assert set(found) >= {
        (23001, "$.from.address"),
        (23001, "$.to[1].address"),
        (23001, "$.to[2].address"),
        (20422, "$.content.html"),
        (23002, "$.content.headers.Subject"),
        (23002, "$.content.headers.Bad Name"),
        (23003, "$.content.attachments[0].content"),
        (23003, "$.content.attachments[0].contentType"),
    }
    assert (23002, "$.content.headers.X-Ok") not in found
    listed = (await client.get("/v1/Emails")).json()
    assert listed["emails"] == []


async def test_schema_problems_have_json_paths(client: httpx.AsyncClient) -> None:
    body = {"from": {"address": "a@example.com"}, "to": [{"name": "x"}], "content": {"html": 3}}
    found = problems(await send(client, body))
    assert (20422, "$.from.name") in found  # a sender needs a name (EmailAddressSender)
    assert (20422, "$.to[0].address") in found
    assert (20422, "$.content.subject") in found
    assert (20422, "$.content.html") in found


async def test_a_missing_variable_names_the_recipient(client: httpx.AsyncClient) -> None:
    body = copy.deepcopy(SIMPLE)
    body["ipPoolName"] = "{{ pool }}"
    assert problems(await send(client, body)) == [(20422, "$.to[0].variables.pool")]


async def test_the_rendered_ip_pool_name_keeps_the_specs_length(
    client: httpx.AsyncClient,
) -> None:
    body = copy.deepcopy(SIMPLE)
    body["ipPoolName"] = "{{ pool }}"
    body["to"] = [
        {"address": f"r{n}@example.com", "variables": {"pool": pool}}
        for n, pool in enumerate(["ok-pool", "x", "p" * 65, "fine"])
    ]
    assert problems(await send(client, body)) == [(20422, "$.ipPoolName")]
    response = await send(client, body)
    assert "Recipient 1: ipPoolName renders to a length of 1" in response.text
    assert "(2 recipients in all)" in response.text
    body["to"] = [body["to"][0], body["to"][3]]
    assert (await send(client, body)).status_code == 202


async def test_ten_thousand_recipients_in_one_request(client: httpx.AsyncClient) -> None:
    body = copy.deepcopy(SIMPLE)
    body["to"] = [{"address": f"user{i}@example.com"} for i in range(10_000)]
    response = await send(client, body)
    assert response.status_code == 202, response.text
    operation_id = response.json()["operationId"]
    operation = (await client.get(f"/v1/Emails/Operations/{operation_id}")).json()
    assert operation["stats"]["total"] == operation["stats"]["queued"] == 10_000
    body["to"].append({"address": "one.too.many@example.com"})
    assert problems(await send(client, body)) == [(20422, "$.to")]


async def test_emails_and_messages_stay_apart(client: httpx.AsyncClient) -> None:
    email_op = (await send(client, SIMPLE)).json()["operationId"]
    sms = {"to": [{"address": "+14153902337", "channel": "PHONE"}], "content": {"text": "Hi"}}
    message_op = (await client.post("/v1/Messages", json=sms)).json()["operationId"]
    email_ops = (await client.get("/v1/Emails/Operations")).json()
    assert_response_conforms(email_ops, "/Emails/Operations", "get")
    assert [o["id"] for o in email_ops["operations"]] == [email_op]
    message_ops = (await client.get("/v1/Messages/Operations")).json()
    assert [o["id"] for o in message_ops["operations"]] == [message_op]
    assert (await client.get(f"/v1/Messages/Operations/{email_op}")).status_code == 404
    assert (await client.get(f"/v1/Emails/Operations/{message_op}")).status_code == 404
    [email] = (await client.get("/v1/Emails")).json()["emails"]
    [message] = (await client.get("/v1/Messages")).json()["messages"]
    assert email["id"].startswith("comms_email_")
    assert (await client.get(f"/v1/Messages/{email['id']}")).status_code == 404
    assert (await client.get(f"/v1/Emails/{message['id']}")).status_code == 404


async def test_delete_cancels_an_unsent_email_and_hides_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = copy.deepcopy(SIMPLE)
    body["to"].append({"address": "keep@example.com"})
    operation_id = (await send(client, body)).json()["operationId"]
    listed = await emails_of(client, operation_id)
    gone = next(e["id"] for e in listed if e["to"][0]["address"] == "bob@example.com")
    response = await client.delete(f"/preview/Emails/{gone}")
    assert response.status_code == 202
    assert_response_conforms(response.json(), "/Emails/{emailId}", "delete", "202")
    assert response.json()["resourceId"] == gone
    assert response.headers["location"] == f"http://testserver/preview/Emails/{gone}"
    assert (await client.get(f"/v1/Emails/{gone}")).status_code == 404
    assert [e["to"][0]["address"] for e in await emails_of(client, operation_id)] == [
        "keep@example.com"
    ]
    stats = (await client.get(f"/v1/Emails/Operations/{operation_id}")).json()["stats"]
    assert (stats["canceled"], stats["queued"]) == (1, 1)
    assert (await client.delete(f"/v1/Emails/{gone}")).status_code == 404
    # The row stays, with deletedAt set (and the cancel's status).
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(messages.c.status, messages.c.deleted_at).where(messages.c.id == gone)
            )
        ).one()
    assert row.status == "CANCELED" and row.deleted_at is not None


async def test_schedule_then_cancel(client: httpx.AsyncClient) -> None:
    body = copy.deepcopy(SIMPLE)
    send_at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body["schedule"] = {"sendAt": [send_at.isoformat().replace("+00:00", "Z")]}
    operation_id = (await send(client, body)).json()["operationId"]
    [email] = await emails_of(client, operation_id)
    assert email["status"] == "SCHEDULED"
    assert email["scheduledFor"] == send_at.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    response = await client.post(f"/v1/Emails/Operations/{operation_id}/Cancel")
    assert response.status_code == 202
    operation = (await client.get(f"/v1/Emails/Operations/{operation_id}")).json()
    assert operation["status"] == "CANCELED"
    assert operation["stats"]["canceled"] == 1


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    body = copy.deepcopy(SIMPLE)
    body["to"] = [{"address": f"p{i}@example.com"} for i in range(5)]
    body["tags"] = {"campaign": "spring"}
    operation_id = (await send(client, body)).json()["operationId"]
    await send(client, SIMPLE)
    page = await client.get("/v1/Emails", params={"pageSize": "2", "tags": "campaign:spring;"})
    first = page.json()
    assert len(first["emails"]) == 2 and first["pagination"]["next"]
    tagged = [
        e["id"]
        for e in (await client.get("/v1/Emails", params={"tags": "campaign:spring;"})).json()[
            "emails"
        ]
    ]
    assert len(tagged) == 5
    assert len(await emails_of(client, operation_id)) == 5
    queued = (await client.get("/v1/Emails", params={"status": "queued"})).json()["emails"]
    assert len(queued) == 6
    opened = (await client.get("/v1/Emails", params={"status": "OPENED"})).json()["emails"]
    assert opened == []
    bad = await client.get("/v1/Emails", params={"status": "LOST", "startDate": "never"})
    assert set(problems(bad)) == {(20422, "$.status"), (20422, "$.startDate")}
    assert problems(await client.get("/v1/Emails", params={"pageSize": "0"})) == [
        (20422, "$.pageSize")
    ]


async def test_a_declared_email_sender_is_used_by_id(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    declared = SenderRecord(
        sender_id(account.sid, "EMAIL", "alerts@example.com"),
        account.sid,
        ChannelType.EMAIL,
        "alerts@example.com",
        "smtp-relay",
        display_name="Alerts",
    )
    async with db.write() as conn:
        await senders.sync_declared(conn, [declared], 1)
    body = {**SIMPLE, "from": {"senderId": declared.id}}
    operation_id = (await send(client, body)).json()["operationId"]
    [email] = await emails_of(client, operation_id)
    assert email["from"] == {"address": "alerts@example.com", "name": "Alerts"}
    unknown = {**SIMPLE, "from": {"senderId": "comms_sender_01h9krwprkeee8fzqspvwy6nq8"}}
    assert problems(await send(client, unknown)) == [(21212, "$.from.senderId")]
    # The sync left only alerts@: the default sender for any address is deactivated.
    assert problems(await send(client, SIMPLE)) == [(21212, "$.from.address")]


async def test_a_domain_sender_covers_its_addresses_and_no_other(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    domain = SenderRecord(
        sender_id(account.sid, "EMAIL", "example.com"),
        account.sid,
        ChannelType.EMAIL,
        "example.com",
        "sandbox",
    )
    async with db.write() as conn:
        await senders.sync_declared(conn, [domain], 1)
    body = {**SIMPLE, "from": {"address": "news@mail.example.com", "name": "News"}}
    operation_id = (await send(client, body)).json()["operationId"]
    [email] = await emails_of(client, operation_id)
    assert email["from"] == {"address": "news@mail.example.com", "name": "News"}
    other = {**SIMPLE, "from": {"address": "news@example.org", "name": "News"}}
    assert problems(await send(client, other)) == [(21212, "$.from.address")]


async def test_seek_finds_an_email_by_its_message_id(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    operation_id = (await send(client, SIMPLE)).json()["operationId"]
    [email] = await emails_of(client, operation_id)
    message_id = f"{email['id']}@example.com"
    async with db.write() as conn:  # the attempt a route's hand-off records
        await conn.execute(
            insert(attempts).values(
                message_id=email["id"],
                operation_id=operation_id,
                account_sid=account.sid,
                number=1,
                channel="EMAIL",
                sender="{}",
                recipient="[]",
                status="SENT",
                attempted_at=1,
                updated_at=1,
                external_id=message_id,
            )
        )
    found = await client.get(f"/v1/Messages/Seek/{message_id}", follow_redirects=False)
    assert found.status_code == 301
    assert found.headers["location"] == f"http://testserver/v1/Emails/{email['id']}"
