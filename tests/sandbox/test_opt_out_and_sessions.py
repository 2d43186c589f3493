"""Dispatch honours STOP/START (21610 before any hand-off) and threads what it sends into
the same session as the phone's replies: through the API, with a real worker's batches."""

from typing import Any

import httpx

from opencomms.domain.sessions import session_id
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from tests.sandbox.helpers import SMS_SENDER, declare_senders, deliver, send

PHONE = "+14155550177"
OTHER = "+14155550178"


async def inbound(client: httpx.AsyncClient, text: str, phone: str = PHONE) -> dict[str, Any]:
    response = await client.post(
        "/v1/Sandbox/Inbound",
        json={
            "from": {"address": phone, "channel": "PHONE"},
            "to": {"address": SMS_SENDER, "channel": "SMS"},
            "content": {"text": text},
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sent_messages(client: httpx.AsyncClient, operation_id: str) -> dict[str, Any]:
    """The operation's messages, fetched one by one (with their attempts), by address."""
    listed = (await client.get("/v1/Messages", params={"operationId": operation_id})).json()
    found = {}
    for summary in listed["messages"]:
        message = (await client.get(f"/v1/Messages/{summary['id']}")).json()
        found[message["to"][0]["address"]] = message
    return found


async def test_stop_fails_sends_with_21610_and_start_lets_them_through(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    await declare_senders(db, account.sid)
    await inbound(client, "STOP")
    operation = await send(client, PHONE, OTHER, text="Sale today", **{"from": _sms()})
    await deliver(db, account.sid)
    messages = await sent_messages(client, operation)
    stopped, other = messages[PHONE], messages[OTHER]
    assert stopped["status"] == "FAILED"
    [attempt] = stopped["attempts"]
    assert attempt["error"]["code"] == 21610
    assert "unsubscribed" in attempt["error"]["message"]
    assert PHONE in attempt["error"]["message"]
    assert attempt["identifier"] is None  # the sandbox never saw it
    assert other["status"] == "DELIVERED"
    inbox = (await client.get("/v1/Sandbox/Messages", params={"to": PHONE})).json()
    assert inbox["messages"] == []

    await inbound(client, "START")
    again = await send(client, PHONE, text="Welcome back", **{"from": _sms()})
    await deliver(db, account.sid)
    assert (await sent_messages(client, again))[PHONE]["status"] == "DELIVERED"


async def test_outbound_messages_share_the_session_of_the_replies(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    await declare_senders(db, account.sid)
    operation = await send(client, PHONE, text="Your code is 1234", **{"from": _sms()})
    await deliver(db, account.sid)
    outbound = (await sent_messages(client, operation))[PHONE]
    reply = await inbound(client, "Thanks!")
    expected = session_id(account.sid, "SMS", SMS_SENDER, PHONE)
    [session] = [r for r in outbound["related"] if r["name"] == "SESSION"]
    assert session["id"] == expected
    assert [r["id"] for r in reply["related"] if r["name"] == "SESSION"] == [expected]
    threaded = (await client.get("/v1/Messages", params={"sessionId": expected})).json()
    assert {m["id"] for m in threaded["messages"]} == {outbound["id"], reply["id"]}


def _sms() -> dict[str, Any]:
    return {"address": SMS_SENDER, "channel": "SMS"}
