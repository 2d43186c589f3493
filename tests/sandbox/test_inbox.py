"""GET and DELETE /v1/Sandbox/Messages: what the sandbox delivered, from disk."""

import httpx
import pytest

from opencomms.api import spec
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database, open_database
from tests.conftest import make_client
from tests.sandbox.helpers import deliver, send


def assert_inbox_conforms(body: object) -> None:
    errors = [e.message for e in spec.extension_validator("SandboxMessageList").iter_errors(body)]
    assert not errors, errors[:5]


async def inbox(client: httpx.AsyncClient, **params: str) -> dict[str, object]:
    response = await client.get("/v1/Sandbox/Messages", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    assert_inbox_conforms(body)
    return body


async def test_lists_each_delivery_with_its_rendered_content(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    body = {
        "to": [
            {"address": "+14155550101", "channel": "PHONE", "variables": {"name": "Ada"}},
            {"address": "+14155550102", "channel": "PHONE", "variables": {"name": "Bob"}},
            {"address": "+15005550001", "channel": "PHONE", "variables": {"name": "Nope"}},
        ],
        "content": {"text": "Hi {{ name }}"},
    }
    operation_id = (await client.post("/v1/Messages", json=body)).json()["operationId"]
    await deliver(db, account.sid)
    listed = await inbox(client)
    entries = listed["messages"]
    assert isinstance(entries, list)
    # The refused number (21211) never reached a phone: two deliveries, newest first.
    assert sorted((e["to"], e["content"]["text"]) for e in entries) == [
        ("+14155550101", "Hi Ada"),
        ("+14155550102", "Hi Bob"),
    ]
    ada = next(e for e in entries if e["to"] == "+14155550101")
    assert ada["operationId"] == operation_id
    # No `from`: the account's richest channel first, its RCS agent (SMS would follow).
    assert ada["channel"] == "RCS"
    assert ada["from"] == "opencomms_sandbox_agent"
    assert ada["attempt"] == 1
    assert ada["identifier"].startswith("SM")
    assert ada["id"].startswith("sbx_")
    # The identifier seeks the message, whose attempt shows the same identifier.
    seek = await client.get(f"/v1/Messages/Seek/{ada['identifier']}", follow_redirects=False)
    assert seek.status_code == 301
    assert seek.headers["location"].endswith(f"/v1/Messages/{ada['messageId']}")
    message = (await client.get(f"/v1/Messages/{ada['messageId']}")).json()
    [attempt] = message["attempts"]
    assert attempt["identifier"] == ada["identifier"]
    assert attempt["infoUrl"] == f"http://testserver/v1/Messages/Seek/{ada['identifier']}"
    assert [e["to"] for e in (await inbox(client, to="+14155550102"))["messages"]] == [
        "+14155550102"
    ]
    assert (await inbox(client, operationId=operation_id))["messages"] != []
    assert (await inbox(client, channel="sms"))["messages"] == []
    assert len((await inbox(client, channel="rcs"))["messages"]) == 2
    # `to` is an address, never a pattern.
    assert (await inbox(client, to="+1415555010%"))["messages"] == []
    assert (await inbox(client, to="+1415555010_"))["messages"] == []


async def test_pages_follow_the_keyset(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    numbers = [f"+1415555{n:04d}" for n in range(200, 205)]
    await send(client, *numbers)
    await deliver(db, account.sid)
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        params = {"pageSize": "2", **({"pageToken": token} if token else {})}
        page = await inbox(client, **params)
        seen += [e["to"] for e in page["messages"]]  # type: ignore[union-attr]
        token = page["pagination"]["next"]  # type: ignore[index]
        again = await inbox(client, pageSize="2", pageToken=page["pagination"]["self"])  # type: ignore[index]
        assert again["messages"] == page["messages"]
        if token is None:
            break
    assert sorted(seen) == numbers


async def test_clear_hides_what_came_before_only(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    first = await send(client, "+14155550301", "+14155550302")
    await deliver(db, account.sid)
    assert (
        await client.delete("/v1/Sandbox/Messages", params={"to": "+14155550301"})
    ).status_code == 204
    assert [e["to"] for e in (await inbox(client))["messages"]] == ["+14155550302"]
    second = await send(client, "+14155550301")
    await deliver(db, account.sid)
    assert sorted(e["operationId"] for e in (await inbox(client))["messages"]) == sorted(
        [first, second]
    )
    cleared = await client.delete("/v1/Sandbox/Messages", params={"operationId": first})
    assert cleared.status_code == 204
    assert [e["operationId"] for e in (await inbox(client))["messages"]] == [second]
    assert (await client.delete("/v1/Sandbox/Messages")).status_code == 204
    assert (await inbox(client))["messages"] == []


async def test_inbox_survives_a_restart(
    client: httpx.AsyncClient, db: Database, db_url: str, account: NewCredential
) -> None:
    await send(client, "+14155550401")
    await deliver(db, account.sid)
    reopened = open_database(db_url)  # a new process would open the database the same way
    try:
        async with make_client(reopened, account) as fresh:
            assert [e["to"] for e in (await inbox(fresh))["messages"]] == ["+14155550401"]
    finally:
        await reopened.dispose()


async def test_one_account_never_sees_or_clears_another(
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    db: Database,
    account: NewCredential,
    other: NewCredential,
) -> None:
    mine = await send(client, "+14155550501")
    await send(other_client, "+14155550501")
    await deliver(db, account.sid, other.sid)
    assert [e["operationId"] for e in (await inbox(client))["messages"]] == [mine]
    assert (await other_client.delete("/v1/Sandbox/Messages")).status_code == 204
    assert [e["operationId"] for e in (await inbox(client))["messages"]] == [mine]
    assert (await inbox(client, operationId=mine))["messages"] != []
    assert (await inbox(other_client, operationId=mine))["messages"] == []


@pytest.mark.parametrize(
    ("params", "context"),
    [
        ({"pageSize": "0"}, "$.pageSize"),
        ({"pageToken": "garbage!"}, "$.pageToken"),
        ({"channel": "FAX"}, "$.channel"),
        ({"operationId": "op_1"}, "$.operationId"),
    ],
)
async def test_bad_parameters_are_400s(
    client: httpx.AsyncClient, params: dict[str, str], context: str
) -> None:
    response = await client.get("/v1/Sandbox/Messages", params=params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["context"] == context


async def test_needs_credentials(db: Database, account: NewCredential) -> None:
    async with make_client(db, None) as anonymous:
        assert (await anonymous.get("/v1/Sandbox/Messages")).status_code == 401
        assert (await anonymous.delete("/v1/Sandbox/Messages")).status_code == 401


@pytest.mark.parametrize("inbox_path", ["/v1/Sandbox/Messages", "/v1/Sandbox/Emails"])
async def test_an_operation_id_longer_than_any_clears_and_lists_nothing(
    client: httpx.AsyncClient, db: Database, account: NewCredential, inbox_path: str
) -> None:
    """The spec's pattern fixes only how an id begins, so a longer one is well-formed; no
    delivery can be of it (found by schemathesis: a 500 on PostgreSQL, past the column)."""
    await send(client, "+14155550501")
    await deliver(db, account.sid)
    too_long = "comms_operation_1brbc4pj94wn9s0gxzf8tqmsfsk54mb03" + "±é" * 20
    cleared = await client.delete(inbox_path, params={"operationId": too_long})
    assert cleared.status_code == 204, cleared.text
    listed = await client.get(inbox_path, params={"operationId": too_long})
    assert listed.status_code == 200, listed.text
    assert [e["to"] for e in (await inbox(client))["messages"]] == ["+14155550501"]
