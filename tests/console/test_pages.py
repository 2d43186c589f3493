"""The console in-process: sign-in, cookies, CSRF, CSP, every page, tenancy."""

import re

import httpx
import pytest

from opencomms.api.deps import VerifiedCredentials
from opencomms.store import accounts
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from tests.conftest import make_client, new_account
from tests.sandbox.helpers import SMS_SENDER, declare_senders, deliver, send

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


async def sign_in(browser: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    form = await browser.get("/console/login")
    return await browser.post(
        "/console/login",
        data={
            "csrf": csrf_of(form),
            "username": username,
            "password": password,
            "next": "/console/inbox",
        },
    )


@pytest.fixture
async def browser(db: Database) -> httpx.AsyncClient:
    async with make_client(db, None) as http:
        yield http  # type: ignore[misc]


async def test_signing_in_sets_a_strict_httponly_cookie(
    browser: httpx.AsyncClient, account: NewCredential
) -> None:
    assert (
        (await browser.get("/console/operations")).headers["location"].startswith("/console/login")
    )
    signed = await sign_in(browser, account.sid, account.secret)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/inbox"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("oc_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert account.secret not in cookie
    page = await browser.get("/console/operations")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text and " style=" not in page.text
    assert account.sid in page.text


async def test_an_api_key_signs_in_and_revoking_it_signs_out(
    browser: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    async with db.write() as conn:
        key = await accounts.create_api_key(conn, account.sid)
    # No cached credential checks: the revocation must show on the very next request.
    state = browser._transport.app.state.opencomms  # type: ignore[attr-defined]
    object.__setattr__(state, "verified", VerifiedCredentials(ttl=0))
    assert (await sign_in(browser, key.sid, key.secret)).status_code == 303
    assert (await browser.get("/console/messages")).status_code == 200
    async with db.write() as conn:
        from sqlalchemy import delete

        from opencomms.store.tables import api_keys

        await conn.execute(delete(api_keys).where(api_keys.c.sid == key.sid))
    assert (await browser.get("/console/messages")).status_code == 303


async def test_wrong_credentials_and_forged_forms_are_refused(
    browser: httpx.AsyncClient, account: NewCredential
) -> None:
    wrong = await sign_in(browser, account.sid, "0" * 32)
    assert wrong.status_code == 401
    assert "match no account" in wrong.text
    form = await browser.get("/console/login")
    forged = await browser.post(
        "/console/login",
        data={"csrf": "x", "username": account.sid, "password": account.secret},
    )
    assert forged.status_code == 403
    assert csrf_of(form)
    assert (await sign_in(browser, account.sid, account.secret)).status_code == 303
    no_token = await browser.post("/console/logout", data={})
    assert no_token.status_code == 403
    assert (await browser.get("/console/operations")).status_code == 200
    # Never redirected off the console after signing in.
    form = await browser.get("/console/login")
    away = await browser.post(
        "/console/login",
        data={
            "csrf": csrf_of(form),
            "username": account.sid,
            "password": account.secret,
            "next": "//evil.example/",
        },
    )
    assert away.headers["location"] == "/console/operations"


async def test_pages_show_operations_messages_attempts_and_the_inbox(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    await declare_senders(db, account.sid)
    delivered = await send(client, "+14155550601", "+15005550002", text="Hello <b>there</b>")
    await deliver(db, account.sid)
    await sign_in(browser, account.sid, account.secret)
    operations = await browser.get("/console/operations")
    assert delivered in operations.text
    progress = (await browser.get("/console/api/operations", params={"ids": delivered})).json()
    [shown] = progress["operations"]
    assert shown == (await client.get(f"/v1/Messages/Operations/{delivered}")).json()
    assert (await browser.get(f"/console/operations/{delivered}")).status_code == 200
    listed = (await client.get("/v1/Messages", params={"operationId": delivered})).json()
    failed = next(m for m in listed["messages"] if m["to"][0]["address"] == "+15005550002")
    ok = next(m for m in listed["messages"] if m["to"][0]["address"] == "+14155550601")
    page = await browser.get(f"/console/messages/{failed['id']}")
    assert "21612" in page.text
    page = await browser.get(f"/console/messages/{ok['id']}")
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in page.text  # escaped, never markup
    identifier = (await client.get(f"/v1/Messages/{ok['id']}")).json()["attempts"][0]["identifier"]
    assert identifier in page.text
    filtered = await browser.get("/console/messages", params={"status": "failed"})
    assert failed["id"] in filtered.text and ok["id"] not in filtered.text
    bad = await browser.get("/console/messages", params={"startDate": "yesterday"})
    assert bad.status_code == 400 and "$.startDate" in bad.text
    inbox = await browser.get("/console/inbox")
    assert "+14155550601" in inbox.text
    thread = await browser.get("/console/inbox/%2B14155550601")
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in thread.text
    senders = re.findall(
        r'<option value="(comms_sender_[^"]+)"(?: selected)?>'
        + re.escape(SMS_SENDER)
        + r" \(SMS\)",
        thread.text,
    )
    replied = await browser.post(
        "/console/inbox/%2B14155550601/reply",
        data={"csrf": csrf_of(thread), "sender": senders[0], "text": "Thanks!"},
    )
    assert replied.status_code == 303
    inbound = (await client.get("/v1/Messages", params={"status": "INBOUND"})).json()["messages"]
    assert [m["from"]["address"] for m in inbound] == ["+14155550601"]
    after = await browser.get("/console/inbox/%2B14155550601")
    assert "Thanks!" in after.text
    # The reply box answers on the sender the conversation last used.
    assert f'<option value="{senders[0]}" selected>' in after.text
    size = (await browser.get("/console/api/inbox/%2B14155550601")).json()
    assert size == {"count": 2}
    empty = await browser.post(
        "/console/inbox/%2B14155550601/reply",
        data={"csrf": csrf_of(thread), "sender": senders[0], "text": "  "},
    )
    assert empty.status_code == 400


async def test_cancel_from_the_console(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, account: NewCredential
) -> None:
    operation_id = (
        await send(client, "+14155550701", schedule={"sendAt": ["2099-01-01T00:00:00Z"]})
        if False
        else None
    )
    from datetime import UTC, datetime, timedelta

    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    operation_id = await send(client, "+14155550701", schedule={"sendAt": [at]})
    await sign_in(browser, account.sid, account.secret)
    page = await browser.get(f"/console/operations/{operation_id}")
    assert "SCHEDULED" in page.text
    canceled = await browser.post(
        f"/console/operations/{operation_id}/cancel", data={"csrf": csrf_of(page)}
    )
    assert canceled.status_code == 303
    operation = (await client.get(f"/v1/Messages/Operations/{operation_id}")).json()
    assert operation["status"] == "CANCELED"


async def test_another_accounts_resources_are_not_shown(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    db: Database,
    box: SecretBox,
    account: NewCredential,
) -> None:
    operation_id = await send(client, "+14155550801")
    await deliver(db, account.sid)
    message_id = (await client.get("/v1/Messages", params={"operationId": operation_id})).json()[
        "messages"
    ][0]["id"]
    stranger = await new_account(db, box)
    await sign_in(browser, stranger.sid, stranger.secret)
    assert operation_id not in (await browser.get("/console/operations")).text
    assert (await browser.get(f"/console/operations/{operation_id}")).status_code == 404
    assert (await browser.get(f"/console/messages/{message_id}")).status_code == 404
    progress = (await browser.get("/console/api/operations", params={"ids": operation_id})).json()
    assert progress["operations"] == []
    assert "+14155550801" not in (await browser.get("/console/inbox")).text
    thread = await browser.get("/console/inbox/%2B14155550801")
    assert 'class="bubble' not in thread.text
    page = await browser.get("/console/operations")
    cancel = await browser.post(
        f"/console/operations/{operation_id}/cancel", data={"csrf": csrf_of(page)}
    )
    assert cancel.status_code == 404


async def test_static_assets_are_vendored(browser: httpx.AsyncClient) -> None:
    for name in ("console.css", "console.js"):
        response = await browser.get(f"/console/static/{name}")
        assert response.status_code == 200
        assert "http://" not in response.text and "https://" not in response.text
