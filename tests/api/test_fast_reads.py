"""The GET fast paths (api/fast_reads.py) answer exactly as the FastAPI routers do.

The same data is read twice: through the app as it runs (fast path) and through an app
whose database has no direct reader, which leaves every GET to the routers. Status, body
and the headers a client reads must match for every filter, page, id and error."""

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import exc, insert, select, update

from opencomms import ids
from opencomms.clock import now_ms
from opencomms.store import fast_reads, operation_status, reads
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.codec import dumps
from opencomms.store.db import Database, is_unavailable
from opencomms.store.direct import SqliteReader
from opencomms.store.tables import attempts, messages, operations
from tests.conftest import make_client, new_account

ULID = "01h9krwprkeee8fzqspvwy6nq8"
TAGS = {"campaign": "spring", "team": "growth"}


def _in_days(days: int) -> str:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def routers(db: Database, account: NewCredential) -> AsyncIterator[httpx.AsyncClient]:
    """The same account through the routers only."""
    async with make_client(dataclasses.replace(db, direct=None), account) as http:
        yield http


async def _send(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/v1/Messages", json=body)
    assert response.status_code == 202, response.text
    operation_id: str = response.json()["operationId"]
    return operation_id


async def _fill(
    client: httpx.AsyncClient, db: Database, other: httpx.AsyncClient
) -> dict[str, str]:
    to = [
        {"address": f"+1415390{i:04d}", "channel": "PHONE", "variables": {"name": f"N{i}"}}
        for i in range(7)
    ]
    content = {"text": "Hi {{ name | default: 'you' }}", "media": [{"url": "https://x.y/a.png"}]}
    plain = await _send(client, {"to": to, "content": content, "tags": TAGS})
    connected = await _send(
        client,
        {
            "to": [
                {
                    "addresses": [
                        {"address": "+14153900100", "channel": "PHONE"},
                        {"address": "+14153900101", "channel": "PHONE"},
                    ]
                },
                {
                    "profileId": "mem_profile_01h9krwprkeee8fzqspvwy6nq8",
                    "memoryStoreId": "mem_store_01h9krwprkeee8fzqspvwy6nq8",
                },
            ],
            "content": {"text": "hello"},
            "tags": {"team": "ops"},
        },
    )
    scheduled = await _send(
        client,
        {
            "to": [{"address": "+14153900200", "channel": "PHONE"}],
            "content": {"text": "later"},
            "schedule": {"sendAt": [_in_days(2)]},
        },
    )
    foreign = await _send(other, {"to": to[:2], "content": {"text": "theirs"}})
    await _dispatch_some(db, plain)
    return {"plain": plain, "connected": connected, "scheduled": scheduled, "foreign": foreign}


async def _dispatch_some(db: Database, operation_id: str) -> None:
    """As dispatch leaves messages: sent with content and attempts, one failed, one deleted,
    and an inbound reply in a session."""
    now = now_ms()
    async with db.write() as conn:
        rows = list(
            await conn.execute(
                select(messages).where(messages.c.operation_id == operation_id).order_by("id")
            )
        )
        sender = {"address": "+15005550006", "channel": "SMS"}
        for number, row in enumerate(rows[:3], start=1):
            await conn.execute(
                update(messages)
                .where(messages.c.id == row.id)
                .values(status="SENT", channel="SMS", sender=dumps(sender),
                        content=dumps({"text": f"sent {number}"}), updated_at=now + number)
            )  # fmt: skip
            failed = number == 2
            await conn.execute(
                insert(attempts).values(
                    message_id=row.id, operation_id=operation_id, account_sid=row.account_sid,
                    number=1, channel="SMS", sender=dumps(sender), recipient=f"[{row.recipient}]",
                    status="FAILED" if failed else "SENT", attempted_at=now,
                    updated_at=now, error_code=30003 if failed else None,
                    error_message="unreachable" if failed else None,
                    external_id=None if failed else f"ext-{number}",
                )
            )  # fmt: skip
        await conn.execute(
            update(messages).where(messages.c.id == rows[3].id).values(deleted_at=now)
        )
        await conn.execute(
            update(messages)
            .where(messages.c.id == rows[4].id)
            .values(status="FAILED", error_code=30003, error_message="x")
        )
        inbound = {**rows[5]._mapping, "id": ids.MESSAGE_PREFIX + ids.ulid(), "operation_id": ""}
        inbound.update(status="INBOUND", session_id="comms_session_" + ids.ulid(),
                       content=dumps({"text": "STOP"}), sender=dumps(sender))  # fmt: skip
        await conn.execute(insert(messages).values(**inbound))


def _queries(made: dict[str, str], message_ids: list[str]) -> list[str]:
    paths = ["/v1/Messages", "/preview/Messages", "/v1/Messages?pageSize=2"]
    paths += [f"/v1/Messages?operationId={made[k]}" for k in ("plain", "connected", "foreign")]
    for query in (
        "status=sent", "status=QUEUED", "status=GROUP", "status=nope", "channel=sms",
        "channel=EMAIL", "tags=team:growth;", "tags=team:growth;campaign:spring;",
        "tags=team:ops;", "tags=bad", "startDate=2000-01-01T00:00:00Z",
        "startDate=2099-01-01T00:00:00Z", "endDate=2000-01-01T00:00:00Z",
        "startDate=2020-01-01T00:00:00Z&endDate=2010-01-01T00:00:00Z", "startDate=x",
        "startDate=2020-01-01T00:00:00", "profile=mem_profile_01h9krwprkeee8fzqspvwy6nq8",
        "profile=bad", "sessionId=comms_session_01h9krwprkeee8fzqspvwy6nq8", "pageSize=0",
        "pageSize=1001", "pageSize=x", "pageSize=1000", "pageToken=garbage", "pageToken=",
        "operationId=", "status=", "status=sent&status=queued", "unknown=1",
    ):  # fmt: skip
        paths.append(f"/v1/Messages?{query}")
    paths += [f"/v1/Messages/{m}" for m in message_ids]
    paths += [
        "/v1/Messages/comms_message_01h9krwprkeee8fzqspvwy6nq8",
        "/v1/Messages/comms_email_01h9krwprkeee8fzqspvwy6nq8",
        "/v1/Messages/Seek",
        "/v1/Messages/anything",
        "/preview/Messages/" + message_ids[0],
    ]
    paths += [f"/v1/Messages/Operations/{op}" for op in made.values()]
    paths += [f"/preview/Messages/Operations/{made['plain']}"]
    paths += ["/v1/Messages/Operations/comms_operation_01h9krwprkeee8fzqspvwy6nq8"]
    return paths


async def _pages(client: httpx.AsyncClient) -> list[str]:
    """Every page's `next` link walked by pageSize=3."""
    paths, token = [], None
    while True:
        path = "/v1/Messages?pageSize=3" + (f"&pageToken={token}" if token else "")
        paths.append(path)
        token = (await client.get(path)).json()["pagination"]["next"]
        if token is None:
            return paths


def _same(path: str, fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code, (path, fast.text, slow.text)
    assert fast.json() == slow.json(), path
    assert fast.content == slow.content, path  # key order too
    for name in ("content-type", "www-authenticate", "content-length"):
        assert fast.headers.get(name) == slow.headers.get(name), (path, name)


async def test_fast_reads_answer_as_the_routers(
    db: Database,
    box: SecretBox,
    client: httpx.AsyncClient,
    routers: httpx.AsyncClient,
) -> None:
    other_account = await new_account(db, box)
    async with make_client(db, other_account) as other:
        made = await _fill(client, db, other)
        foreign_page = (await other.get("/v1/Messages")).json()
    listed = (await routers.get("/v1/Messages", params={"pageSize": "1000"})).json()
    message_ids = [m["id"] for m in listed["messages"]]
    message_ids.append(foreign_page["messages"][0]["id"])  # another account's: 404
    assert len(message_ids) >= 10
    for path in _queries(made, message_ids) + await _pages(routers):
        _same(path, await client.get(path), await routers.get(path))


async def test_fast_reads_check_credentials_as_the_routers(
    db: Database, client: httpx.AsyncClient, routers: httpx.AsyncClient
) -> None:
    made = await _send(client, {"to": [{"address": "+14153900300", "channel": "PHONE"}],
                                "content": {"text": "x"}})  # fmt: skip
    for path in ("/v1/Messages", f"/v1/Messages/Operations/{made}", "/v1/Messages/x"):
        for auth in (None, ("AC" + "0" * 32, "wrong")):
            fast = await client.get(path, auth=auth) if auth else None
            slow = await routers.get(path, auth=auth) if auth else None
            if auth is None:
                fast = await client.get(path, headers={"authorization": ""})
                slow = await routers.get(path, headers={"authorization": ""})
            assert fast is not None and slow is not None
            _same(path, fast, slow)


async def test_fast_paths_are_taken(db: Database, client: httpx.AsyncClient) -> None:
    """The GETs above really went through the direct reader (else the test compares the
    routers with themselves)."""
    assert db.direct is not None
    calls = 0
    run = db.direct.run

    async def counting(statements: Any) -> Any:
        nonlocal calls
        calls += 1
        return await run(statements)

    object.__setattr__(db.direct, "run", counting)
    made = await _send(client, {"to": [{"address": "+14153900400", "channel": "PHONE"}],
                                "content": {"text": "x"}})  # fmt: skip
    page = (await client.get("/v1/Messages", params={"operationId": made})).json()
    await client.get(f"/v1/Messages/{page['messages'][0]['id']}")
    await client.get(f"/v1/Messages/Operations/{made}")
    assert calls == 3


async def test_operation_stats_are_the_counters(
    db: Database, client: httpx.AsyncClient, account: NewCredential
) -> None:
    """The fast read shows the operation's counters, which equal the aggregate of its rows
    (kept so by store/operation_status.py; its own tests cover every lifecycle path)."""
    to = [{"address": f"+1415390050{i}", "channel": "PHONE"} for i in range(7)]
    to.append({"profileId": "mem_profile_" + ULID, "memoryStoreId": "mem_store_" + ULID})
    made = await _send(client, {"to": to, "content": {"text": "x"}})
    assert db.direct is not None
    found = await fast_reads.operation_with_stats(db.direct, account.sid, made)
    assert found is not None
    async with db.read() as conn:
        counters = (await reads.operation_stats(conn, [made]))[made]
        aggregate = (await operation_status.aggregate_stats(conn, [made]))[made]
        row = (await conn.execute(select(operations).where(operations.c.id == made))).first()
    assert row is not None and found.status == row.status
    assert found.stats == counters == aggregate
    assert (found.stats.total, found.stats.unaddressable) == (8, 1)


async def test_an_unreadable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    """What the fast reads raise when SQLite cannot be read is a 503's error, as through
    SQLAlchemy, not a 500's."""
    reader = SqliteReader(tmp_path / "missing" / "opencomms.db")
    try:
        with pytest.raises(exc.OperationalError) as raised:
            await reader.run([("SELECT 1", ())])
        assert is_unavailable(raised.value)
    finally:
        await reader.aclose()
