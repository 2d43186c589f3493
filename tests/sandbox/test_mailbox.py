"""GET and DELETE /v1/Sandbox/Emails and the raw MIME: what the sandbox mailbox received."""

import base64
import email
import email.policy
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from opencomms.api import spec
from opencomms.channels import OutboundMessage
from opencomms.channels.smtp import SmtpChannel, SmtpRouteConfig
from opencomms.store.accounts import NewCredential
from opencomms.store.codec import loads
from opencomms.store.db import Database
from opencomms.store.tables import messages
from tests.channels.smtp.conftest import smtp_server
from tests.sandbox.helpers import deliver, send

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256))).decode()
PDF = base64.b64encode(b"%PDF-1.4 invoice").decode()
BODY: dict[str, Any] = {
    "from": {"address": "shop@example.com", "name": "Zoë's Shop"},
    "to": [
        {"address": "ada@example.com", "name": "Ada Lovelace", "variables": {"n": "1"}},
        {"address": "bob@example.org", "variables": {"n": "2"}},
        {"address": "fail@example.com", "variables": {"n": "3"}},
    ],
    "content": {
        "subject": "Order {{ n }} — shipped",
        "html": '<p>Order <b>{{ n }}</b></p><img src="cid:logo">',
        "headers": {"X-Order": "{{ n }}"},
        "attachments": [
            {"content": PNG, "contentType": "image/png", "filename": "logo.png", "cid": "logo"},
            {"content": PDF, "contentType": "application/pdf", "filename": "invoice {{ n }}.pdf"},
        ],
    },
}


def epoch_seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def assert_mailbox_conforms(body: object) -> None:
    validator = spec.extension_validator("SandboxEmailList")
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, errors[:5]


async def mailbox(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/Sandbox/Emails", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_mailbox_conforms(body)
    found: list[dict[str, Any]] = body["emails"]
    return found


async def send_emails(client: httpx.AsyncClient, body: dict[str, Any] = BODY) -> str:
    response = await client.post("/v1/Emails", json=body)
    assert response.status_code == 202, response.text
    operation_id: str = response.json()["operationId"]
    return operation_id


async def test_lists_each_email_with_its_rendered_content(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    operation_id = await send_emails(client)
    await deliver(db, account.sid)
    entries = await mailbox(client)
    # fail@ was refused at the hand-off: it never reached a mailbox.
    assert sorted(e["to"]["address"] for e in entries) == ["ada@example.com", "bob@example.org"]
    ada = next(e for e in entries if e["to"]["address"] == "ada@example.com")
    assert ada["to"] == {"address": "ada@example.com", "name": "Ada Lovelace"}
    assert ada["from"] == {"address": "shop@example.com", "name": "Zoë's Shop"}
    assert ada["operationId"] == operation_id and ada["attempt"] == 1
    assert ada["subject"] == "Order 1 — shipped"
    assert ada["html"] == '<p>Order <b>1</b></p><img src="cid:logo">'
    assert ada["text"] == "Order 1"  # derived from the HTML, as it was sent
    assert ada["headers"] == {"X-Order": "1"}
    assert ada["attachments"] == [
        {"filename": "logo.png", "contentType": "image/png", "contentId": "logo", "size": 264},
        {
            "filename": "invoice 1.pdf",
            "contentType": "application/pdf",
            "contentId": None,
            "size": 16,
        },
    ]
    assert ada["identifier"] == f"{ada['emailId']}@sandbox.opencomms.local"
    assert ada["rawUrl"] == f"http://testserver/v1/Sandbox/Emails/{ada['emailId']}/Raw"
    assert epoch_seconds(ada["deliveredAt"]) > 0
    bob = next(e for e in entries if e["to"]["address"] == "bob@example.org")
    assert bob["to"] == {"address": "bob@example.org"}  # no name given: none shown
    # The identifier seeks the email.
    seek = await client.get(f"/v1/Messages/Seek/{ada['identifier']}", follow_redirects=False)
    assert seek.headers["location"].endswith(f"/v1/Emails/{ada['emailId']}")
    # Filters, and the Messages inbox is not the mailbox.
    assert [e["emailId"] for e in await mailbox(client, to="bob@example.org")] == [bob["emailId"]]
    assert await mailbox(client, to="bob@example.%") == []
    assert len(await mailbox(client, operationId=operation_id)) == 2
    assert await mailbox(client, operationId="comms_operation_" + "0" * 26) == []
    inbox = (await client.get("/v1/Sandbox/Messages")).json()
    assert inbox["messages"] == []


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def raw(client: httpx.AsyncClient, email_id: str) -> bytes:
    response = await client.get(f"/v1/Sandbox/Emails/{email_id}/Raw")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "message/rfc822"
    return response.content


async def stored_message(db: Database, email_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(select(messages.c.content).where(messages.c.id == email_id))
        ).one()
    content: dict[str, Any] = loads(row.content)
    return content


async def test_the_raw_email_is_byte_for_byte_what_an_smtp_route_sends(
    client: httpx.AsyncClient, db: Database, account: NewCredential, tmp_path: Path
) -> None:
    await send_emails(client)
    await deliver(db, account.sid)
    entries = await mailbox(client)
    ada = next(e for e in entries if e["to"]["address"] == "ada@example.com")
    data = await raw(client, ada["emailId"])
    message = parsed(data)
    assert message["Message-ID"] == f"<{ada['identifier']}>"
    assert str(message["To"]) == "Ada Lovelace <ada@example.com>"
    assert str(message["From"]) == "Zoë's Shop <shop@example.com>"
    assert message["Subject"] == "Order 1 — shipped"
    assert message["X-Order"] == "1"
    html = message.get_body(("html",))
    assert html is not None and html.get_content() == ada["html"]
    names = [part.get_filename() for part in message.iter_attachments()]
    assert names == ["invoice 1.pdf"]  # the inline logo sits in multipart/related
    # The same hand-off through a real SMTP route, at the same second, arrives as the
    # same bytes.
    delivered_at = epoch_seconds(ada["deliveredAt"])
    outbound = OutboundMessage(
        ada["emailId"],
        1,
        "EMAIL",
        "shop@example.com",
        "ada@example.com",
        await stored_message(db, ada["emailId"]),
    )
    with smtp_server(tmp_path / "spool.jsonl") as server:
        config = SmtpRouteConfig(
            host="127.0.0.1", port=server.port, message_id_domain="sandbox.opencomms.local"
        )
        channel = SmtpChannel(config, clock=lambda: delivered_at)
        await channel.open(lambda receipt: None)
        try:
            result = await channel.send(outbound)
        finally:
            await channel.aclose()
        [received] = server.received()
    assert result.external_id == ada["identifier"]
    assert received["data"] == data


async def test_pages_and_clears(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    body = {
        **BODY,
        "to": [{"address": f"user{n}@example.com"} for n in range(5)],
        "content": {"subject": "Hi", "html": "<p>Hi</p>"},
    }
    first = await send_emails(client, body)
    second = await send_emails(client, {**body, "to": [{"address": "eve@example.com"}]})
    sms = await send(client, "+14155550100")
    await deliver(db, account.sid)
    seen: list[str] = []
    token: str | None = None
    while True:
        params = {"pageSize": "2", **({"pageToken": token} if token else {})}
        response = await client.get("/v1/Sandbox/Emails", params=params)
        page = response.json()
        assert_mailbox_conforms(page)
        assert len(page["emails"]) <= 2
        seen += [e["id"] for e in page["emails"]]
        token = page["pagination"]["next"]
        if token is None:
            break
    assert len(seen) == len(set(seen)) == 6
    assert seen == sorted(seen, key=lambda i: -int(i.removeprefix("sbx_")))
    # Clearing one operation, then one address, then everything: the SMS inbox stays.
    assert (
        await client.delete("/v1/Sandbox/Emails", params={"operationId": second})
    ).status_code == 204
    assert {e["operationId"] for e in await mailbox(client)} == {first}
    gone = (await mailbox(client, to="user3@example.com"))[0]["emailId"]
    await client.delete("/v1/Sandbox/Emails", params={"to": "user3@example.com"})
    assert len(await mailbox(client)) == 4
    assert (await client.get(f"/v1/Sandbox/Emails/{gone}/Raw")).status_code == 404
    await client.delete("/v1/Sandbox/Emails")
    assert await mailbox(client) == []
    inbox = (await client.get("/v1/Sandbox/Messages")).json()["messages"]
    assert [m["operationId"] for m in inbox] == [sms]


async def test_one_account_never_sees_anothers_mailbox(
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    db: Database,
    account: NewCredential,
    other: NewCredential,
) -> None:
    await send_emails(client)
    await deliver(db, account.sid, other.sid)
    [ada, *_] = await mailbox(client)
    assert await mailbox(other_client) == []
    assert (await other_client.get(f"/v1/Sandbox/Emails/{ada['emailId']}/Raw")).status_code == 404
    await other_client.delete("/v1/Sandbox/Emails")
    assert len(await mailbox(client)) == 2


async def test_header_values_are_shown_as_sent(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    """A variable with a line break cannot add a header: it is a space in what is sent,
    and the mailbox shows what was sent."""
    evil = "Hi\r\nBcc: eve@example.com"
    body = {
        **BODY,
        "to": [{"address": "ada@example.com", "variables": {"v": evil}}],
        "content": {"subject": "{{ v }}", "html": "<p>Hi</p>", "headers": {"X-V": "{{ v }}"}},
    }
    await send_emails(client, body)
    await deliver(db, account.sid)
    [ada] = await mailbox(client)
    assert ada["subject"] == "Hi  Bcc: eve@example.com"
    assert ada["headers"] == {"X-V": "Hi  Bcc: eve@example.com"}
    data = await raw(client, ada["emailId"])
    assert b"\r\nBcc:" not in data
    assert b"Subject: Hi  Bcc: eve@example.com\r\n" in data


async def test_bad_parameters_are_400_and_unknown_emails_404(client: httpx.AsyncClient) -> None:
    for params in ({"pageSize": "0"}, {"operationId": "nope"}, {"pageToken": "%%%"}):
        response = await client.get("/v1/Sandbox/Emails", params=params)
        assert response.status_code == 400, (params, response.text)
    for email_id in ("comms_email_" + "0" * 26, "x" * 300, "comms_message_1"):
        response = await client.get(f"/v1/Sandbox/Emails/{email_id}/Raw")
        assert response.status_code == 404, email_id
