"""Sending through the account's senders: `from` resolved at accept time, or chosen."""

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from opencomms.domain.senders import sender_id
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from opencomms.store.tables import senders
from tests.api.conformance import assert_conforms
from tests.conftest import make_client, new_account
from tests.dispatch.helpers import make_pool

TO = [{"address": "+14153902337", "channel": "PHONE"}]


async def send(client: httpx.AsyncClient, sender: Any, to: Any = TO) -> httpx.Response:
    body = {"to": to, "content": {"text": "Hi"}}
    if sender is not None:
        body["from"] = sender
    return await client.post("/v1/Messages", json=body)


async def messages(client: httpx.AsyncClient, response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 202, response.text
    operation_id = response.json()["operationId"]
    listed = await client.get("/v1/Messages", params={"operationId": operation_id})
    return list(listed.json()["messages"])


def errors_of(response: httpx.Response) -> list[tuple[int, str | None]]:
    assert response.status_code == 400, response.text
    assert_conforms(response.json(), "TwilioErrors")
    return [(e["code"], e["context"]) for e in response.json()["errors"]]


@pytest.mark.parametrize("items", [["SMS"], [None], [[1]], [{"channel": "FAX", "priority": 0}]])
async def test_malformed_priority_items_are_a_400(
    client: httpx.AsyncClient, db: Database, account: NewCredential, items: list[Any]
) -> None:
    pool = await make_pool(db, account=account.sid)
    response = await send(client, {"senderPoolId": pool, "channels": {"priority": items}})
    found = errors_of(response)
    assert found and all(str(c).startswith("$.from.channels.priority[0]") for _, c in found)


async def test_without_from_rcs_then_sms_and_from_shows_the_sender(
    client: httpx.AsyncClient, account: NewCredential
) -> None:
    [message] = await messages(client, await send(client, None))
    assert message["from"] == {
        "address": "opencomms_sandbox_agent",
        "channel": "RCS",
        "senderId": sender_id(account.sid, "RCS", "opencomms_sandbox_agent"),
    }
    whatsapp = [{"address": "+14153902337", "channel": "WHATSAPP"}]
    [message] = await messages(client, await send(client, None, whatsapp))
    assert message["from"]["channel"] == "WHATSAPP"


async def test_pool_sends_show_the_pool(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    pool = await make_pool(db, ("SMS", "WHATSAPP"), account=account.sid)
    [message] = await messages(client, await send(client, {"senderPoolId": pool}))
    assert_conforms(message["from"], "MessageSenderAndPool")
    assert message["from"]["senderPoolId"] == pool
    assert message["from"]["channel"] == "SMS"
    sms_filtered_out = {"senderPoolId": pool, "channels": {"filterIn": ["WHATSAPP"]}}
    [unreachable] = await messages(client, await send(client, sms_filtered_out))
    assert unreachable["status"] == "FAILED"


async def test_named_senders_must_be_active_senders_of_the_account(
    client: httpx.AsyncClient, db: Database, box: SecretBox, account: NewCredential
) -> None:
    own = sender_id(account.sid, "SMS", "+15005550006")
    [message] = await messages(client, await send(client, {"senderId": own}))
    assert message["from"]["senderId"] == own
    by_address = {"address": "+15005550006", "channel": "SMS"}
    [message] = await messages(client, await send(client, by_address))
    assert message["from"]["senderId"] == own
    other = await new_account(db, box)
    foreign = sender_id(other.sid, "SMS", "+15005550006")
    assert errors_of(await send(client, {"senderId": foreign})) == [(21212, "$.from.senderId")]
    unknown = {"address": "+15550001234", "channel": "SMS"}
    assert errors_of(await send(client, unknown)) == [(21212, "$.from.address")]
    other_pool = await make_pool(db, account=other.sid)
    refused = await send(client, {"senderPoolId": other_pool})
    assert errors_of(refused) == [(21212, "$.from.senderPoolId")]
    async with db.write() as conn:
        await conn.execute(update(senders).where(senders.c.id == own).values(status="DEACTIVATED"))
    # Senders change when a server starts with a new configuration (a new app here); a
    # running one reuses an account's sender list for a few seconds (api.deps).
    async with make_client(db, account) as restarted:
        refused = await send(restarted, {"senderId": own})
    assert errors_of(refused) == [(21212, "$.from.senderId")]
    assert "deactivated" in refused.json()["errors"][0]["message"]
    async with make_client(db, other) as theirs:
        [message] = await messages(theirs, await send(theirs, {"senderId": foreign}))
        assert message["from"]["senderId"] == foreign
