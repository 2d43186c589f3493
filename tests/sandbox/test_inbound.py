"""POST /v1/Sandbox/Inbound: a phone writes back; sessions thread it; STOP/START opt out/in."""

from typing import Any

import httpx
import pytest

from opencomms.domain.channels import ChannelType
from opencomms.domain.sessions import session_id
from opencomms.store import opt_outs
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from tests.api.conformance import assert_response_conforms
from tests.sandbox.helpers import RCS_AGENT, SMS_SENDER, declare_senders

PHONE = "+14155550123"


def reply(
    text: str, phone: str = PHONE, to: str = SMS_SENDER, channel: str = "SMS"
) -> dict[str, Any]:
    return {
        "from": {"address": phone, "channel": "PHONE"},
        "to": {"address": to, "channel": channel},
        "content": {"text": text},
    }


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/Sandbox/Inbound", json=body)


async def test_an_inbound_message_is_stored_and_threaded(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    await declare_senders(db, account.sid)
    created = await post(client, reply("Yes, see you at 5!"))
    assert created.status_code == 201, created.text
    message = created.json()
    assert_response_conforms(message, "/Messages/{messageId}", "get")
    assert message["status"] == "INBOUND"
    assert message["from"] == {"address": PHONE, "channel": "PHONE"}
    assert message["to"][0]["address"] == SMS_SENDER
    assert message["content"] == {"text": "Yes, see you at 5!"}
    assert created.headers["location"] == f"http://testserver/v1/Messages/{message['id']}"
    [session] = [r for r in message["related"] if r["name"] == "SESSION"]
    assert session["id"] == session_id(account.sid, "SMS", SMS_SENDER, PHONE)
    assert session["uri"] == f"http://testserver/v1/Messages?sessionId={session['id']}"
    # Fetched, listed by status and by session, like any message.
    fetched = (await client.get(f"/v1/Messages/{message['id']}")).json()
    assert fetched == message
    by_status = (await client.get("/v1/Messages", params={"status": "inbound"})).json()
    assert [m["id"] for m in by_status["messages"]] == [message["id"]]
    assert_response_conforms(by_status, "/Messages", "get")
    second = (await post(client, reply("And bring snacks"))).json()
    elsewhere = (await post(client, reply("Other number", phone="+14155550999"))).json()
    threaded = (await client.get("/v1/Messages", params={"sessionId": session["id"]})).json()
    assert [m["id"] for m in threaded["messages"]] == [second["id"], message["id"]]
    assert elsewhere["related"][0]["id"] != session["id"]
    rcs = await post(client, reply("hi agent", to=RCS_AGENT, channel="rcs"))
    assert rcs.status_code == 201, rcs.text
    assert rcs.json()["to"][0]["channel"] == "RCS"


async def test_another_accounts_sender_or_an_unknown_one_is_refused(
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    db: Database,
    account: NewCredential,
    other: NewCredential,
) -> None:
    await declare_senders(db, account.sid)
    await declare_senders(db, other.sid, ((ChannelType.SMS, "+15005550077"),))
    refused = await post(other_client, reply("hello"))
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["context"] == "$.to.address"
    assert (await post(client, reply("hi", to="+15005550099"))).status_code == 400
    listed = (await other_client.get("/v1/Messages", params={"status": "INBOUND"})).json()
    assert listed["messages"] == []


@pytest.mark.parametrize(
    ("body", "contexts"),
    [
        (
            {
                "from": {"address": "+1415", "channel": "PHONE"},
                "to": {"address": SMS_SENDER, "channel": "SMS"},
                "content": {"text": "x"},
            },
            ["$.from.address"],
        ),
        (
            {
                "from": {"address": PHONE, "channel": "WHATSAPP"},
                "to": {"address": SMS_SENDER, "channel": "SMS"},
                "content": {"text": "x"},
            },
            ["$.from.channel"],
        ),
        (
            {
                "from": {"address": PHONE, "channel": "PHONE"},
                "to": {"address": SMS_SENDER, "channel": "FAX"},
                "content": {"text": ""},
                "extra": 1,
            },
            ["$.to.channel", "$.content.text", "$.extra"],
        ),
        (
            {"to": {"address": SMS_SENDER, "channel": "SMS"}, "content": {"text": "x" * 1601}},
            ["$.from"],
        ),
        (reply("x" * 1601), ["$.content.text"]),
        (reply("nul \x00 here"), ["$.content.text"]),
    ],
)
async def test_bad_bodies_list_every_problem(
    client: httpx.AsyncClient,
    db: Database,
    account: NewCredential,
    body: dict[str, Any],
    contexts: list[str],
) -> None:
    await declare_senders(db, account.sid)
    response = await post(client, body)
    assert response.status_code == 400, response.text
    assert sorted(e["context"] for e in response.json()["errors"]) == sorted(contexts)
    listed = (await client.get("/v1/Messages", params={"status": "INBOUND"})).json()
    assert listed["messages"] == []


async def test_not_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/Sandbox/Inbound", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_stop_and_start_keywords_change_the_opt_out(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    await declare_senders(db, account.sid)
    pair, other_sender = (SMS_SENDER, PHONE), (RCS_AGENT, PHONE)

    async def opted() -> set[tuple[str, str]]:
        async with db.read() as conn:
            return await opt_outs.opted_out(conn, account.sid, [pair, other_sender])

    assert await opted() == set()
    await post(client, reply("  unsubscribe \n"))
    assert await opted() == {pair}
    await post(client, reply("STOP please"))  # not a bare keyword: no change
    await post(client, reply("Yes"))
    assert await opted() == set()
    for word in ("STOP", "stopall", "Cancel", "END", "quit"):
        await post(client, reply("START"))
        await post(client, reply(word))
        assert await opted() == {pair}, word
    await post(client, reply("unstop"))
    assert await opted() == set()


async def test_opt_outs_are_per_account_and_sender_and_strip_whatsapp(db: Database) -> None:
    from opencomms.domain.sessions import Consent

    async with db.write() as conn:
        await opt_outs.record(
            conn,
            "AC" + "1" * 32,
            "+15005550006",
            "whatsapp:+14155550777",
            Consent.OPT_OUT,
            "STOP",
            1,
        )
    async with db.read() as conn:
        mine = await opt_outs.opted_out(
            conn,
            "AC" + "1" * 32,
            [
                ("+15005550006", "+14155550777"),
                ("+15005550006", "whatsapp:+14155550777"),
                ("+15005550007", "+14155550777"),
            ],
        )
        theirs = await opt_outs.opted_out(conn, "AC" + "2" * 32, [("+15005550006", "+14155550777")])
    assert mine == {("+15005550006", "+14155550777"), ("+15005550006", "whatsapp:+14155550777")}
    assert theirs == set()
    async with db.read() as conn:
        many = [("+15005550006", f"+1416555{n:04d}") for n in range(1200)]
        assert await opt_outs.opted_out(conn, "AC" + "1" * 32, many) == set()


async def test_the_default_senders_take_replies(client: httpx.AsyncClient) -> None:
    """A new account has the sandbox's senders: phones can write to them at once, and a
    reply's `to` is the very sender the account's sends come from."""
    sms = await post(client, reply("hi"))
    assert sms.status_code == 201, sms.text
    rcs = await post(client, reply("hi", to=RCS_AGENT, channel="RCS"))
    assert rcs.status_code == 201, rcs.text
    replied_to = {r.json()["to"][0]["senderId"]: r.json()["to"][0]["channel"] for r in (sms, rcs)}
    body = {"to": [{"address": PHONE, "channel": "PHONE"}], "content": {"text": "x"}}
    sent = (await client.post("/v1/Messages", json=body)).json()
    listed = await client.get("/v1/Messages", params={"operationId": sent["operationId"]})
    sender = listed.json()["messages"][0]["from"]
    assert replied_to[sender["senderId"]] == sender["channel"]
    assert (await post(client, reply("hi", to="+15005550077"))).status_code == 400
