"""Decision 11: Idempotency-Key on POSTs, on both databases, in one process and across two."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from opencomms.clock import now_ms
from opencomms.store import idempotency
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from tests.conftest import make_client
from tests.hardening.processes import launch

ONE = {"to": [{"address": "+14155550100", "channel": "PHONE"}], "content": {"text": "Hi"}}
OTHER = {"to": [{"address": "+14155550101", "channel": "PHONE"}], "content": {"text": "Hi"}}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def operations_of(client: httpx.AsyncClient) -> list[str]:
    page = (await client.get("/v1/Messages/Operations", params={"pageSize": "1000"})).json()
    return [o["id"] for o in page["operations"]]


async def test_a_retry_replays_the_first_answer(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/Messages", json=ONE, headers=keyed("k-1"))
    again = await client.post("/v1/Messages", json=ONE, headers=keyed("k-1"))
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    for name in ("location", "operation-id", "operation-location", "resource-location"):
        assert again.headers[name] == first.headers[name]
    assert await operations_of(client) == [first.json()["operationId"]]


async def test_a_refusal_is_replayed_too(client: httpx.AsyncClient) -> None:
    bad = {"to": [{"address": "nope", "channel": "PHONE"}], "content": {"text": "Hi"}}
    first = await client.post("/v1/Messages", json=bad, headers=keyed("k-bad"))
    again = await client.post("/v1/Messages", json=bad, headers=keyed("k-bad"))
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


async def test_another_body_with_the_same_key_is_a_422(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/Messages", json=ONE, headers=keyed("k-2"))).status_code == 202
    other = await client.post("/v1/Messages", json=OTHER, headers=keyed("k-2"))
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == 20422
    assert len(await operations_of(client)) == 1


async def test_a_key_in_flight_is_a_409(
    client: httpx.AsyncClient, db: Database, account: NewCredential
) -> None:
    from opencomms.api.idempotency import _fingerprint

    body = httpx.Request("POST", "http://x", json=ONE).content
    fingerprint = _fingerprint({"method": "POST", "path": "/v1/Messages"}, body)
    async with db.write() as conn:
        assert await idempotency.claim(conn, account.sid, "k-3", fingerprint, now_ms()) is None
    busy = await client.post(
        "/v1/Messages", content=body, headers={**keyed("k-3"), "content-type": "application/json"}
    )
    assert busy.status_code == 409
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["errors"][0]["code"] == 20409


async def test_keys_belong_to_their_account(db: Database, client: httpx.AsyncClient) -> None:
    from opencomms.store.accounts import SecretBox
    from tests.conftest import SECRET, new_account

    stranger = await new_account(db, SecretBox(SECRET))
    mine = await client.post("/v1/Messages", json=ONE, headers=keyed("shared"))
    async with make_client(db, stranger) as other:
        theirs = await other.post("/v1/Messages", json=OTHER, headers=keyed("shared"))
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["operationId"] != theirs.json()["operationId"]
    assert "idempotent-replayed" not in theirs.headers


async def test_concurrent_identical_requests_send_once(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(client.post("/v1/Messages", json=ONE, headers=keyed("race")) for _ in range(12))
    )
    accepted = {a.json()["operationId"] for a in answers if a.status_code == 202}
    assert len(accepted) == 1
    assert {a.status_code for a in answers} <= {202, 409}
    assert await operations_of(client) == list(accepted)


async def test_bad_keys_are_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/Messages", json=ONE, headers=keyed("x" * 256))
    assert response.status_code == 400
    assert await operations_of(client) == []


@pytest.mark.slow
def test_two_api_processes_share_the_keys(pg_url: str, tmp_path: Path) -> None:
    first = launch(pg_url, tmp_path, "--no-worker")
    second = launch(pg_url, tmp_path, "--no-worker", credentials=first.auth)
    try:
        clients = [
            httpx.Client(base_url=s.base_url, auth=s.auth, timeout=30) for s in (first, second)
        ]

        async def race() -> list[httpx.Response]:
            async with (
                httpx.AsyncClient(base_url=first.base_url, auth=first.auth) as a,
                httpx.AsyncClient(base_url=second.base_url, auth=first.auth) as b,
            ):
                posts = [
                    c.post("/v1/Messages", json=ONE, headers=keyed("pg-race")) for c in (a, b) * 6
                ]
                return await asyncio.gather(*posts)

        answers = asyncio.run(race())
        accepted = {a.json()["operationId"] for a in answers if a.status_code == 202}
        assert len(accepted) == 1
        assert {a.status_code for a in answers} <= {202, 409}
        time.sleep(0.2)
        replay = clients[1].post("/v1/Messages", json=ONE, headers=keyed("pg-race"))
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["operationId"] in accepted
        listed = clients[0].get("/v1/Messages/Operations").json()["operations"]
        assert [o["id"] for o in listed] == list(accepted)
    finally:
        first.stop()
        second.stop()


def _recipients(count: int) -> list[dict[str, str]]:
    return [{"address": f"+1415555{n:04d}", "channel": "PHONE"} for n in range(count)]


EMAIL = {
    "from": {"address": "support@example.com", "name": "Support"},
    "to": [{"address": "bob@example.com", "name": "Bob"}],
    "content": {"subject": "Hi", "html": "<p>Hi</p>"},
}
# One recipient (SQLite's group commit; PostgreSQL's one statement), past
# sends.ONE_STATEMENT_MAX (PostgreSQL's COPY in a transaction), and an email.
CRASHES = {
    "message": ("/v1/Messages", ONE, "/v1/Messages/Operations"),
    "many": ("/v1/Messages", {**ONE, "to": _recipients(150)}, "/v1/Messages/Operations"),
    "email": ("/v1/Emails", EMAIL, "/v1/Emails/Operations"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CRASHES))
def test_a_crash_between_commit_and_answer_replays(db_url: str, tmp_path: Path, case: str) -> None:
    """SIGKILL once the send has committed, before its 202 leaves: the retry with the same
    key replays that 202 (the key committed with the send), and nothing is sent twice."""
    path, body, listing = CRASHES[case]
    crashing = launch(db_url, tmp_path, "--no-worker", module="tests.hardening.crash_on_202")
    with pytest.raises(httpx.TransportError):
        answer = httpx.post(
            crashing.base_url + path, json=body, auth=crashing.auth, headers=keyed("crash")
        )
        pytest.fail(f"answered {answer.status_code}: {answer.text}")
    assert crashing.process.wait(timeout=10) == -9
    server = launch(db_url, tmp_path, "--no-worker", credentials=crashing.auth)
    try:
        with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=30) as client:
            retry = client.post(path, json=body, headers=keyed("crash"))
            assert retry.status_code == 202, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            listed = client.get(listing, params={"pageSize": "1000"}).json()["operations"]
            assert [o["id"] for o in listed] == [retry.json()["operationId"]]
    finally:
        server.stop()


@pytest.mark.parametrize("recipients", [1, 150], ids=["one-statement", "bulk"])
async def test_a_request_that_outlived_its_lock_writes_nothing(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, recipients: int
) -> None:
    """The first request is still working when its lock lapses and a retry takes the key
    over: the retry's send is the only one; the first one's commit is refused (409), on
    every write path (SQLite's group commit, PostgreSQL's one statement and its COPY)."""
    from opencomms.api import messages as api_messages

    monkeypatch.setattr(idempotency, "LOCK_MS", -1)  # every claim lapses at once
    body = {
        "to": [{"address": f"+1415555{i:04d}", "channel": "PHONE"} for i in range(recipients)],
        "content": {"text": "Hi"},
    }
    spend = api_messages._spend_recipients
    retried: list[httpx.Response] = []
    calls: list[int] = []

    async def slow_first(*args: object) -> None:
        calls.append(1)
        if len(calls) == 1:  # the first request, just before its write: the retry overtakes
            retried.append(await client.post("/v1/Messages", json=body, headers=keyed("k-slow")))
        await spend(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(api_messages, "_spend_recipients", slow_first)
    first = await client.post("/v1/Messages", json=body, headers=keyed("k-slow"))
    assert retried[0].status_code == 202, retried[0].text
    assert first.status_code == 409, first.text
    assert first.json()["errors"][0]["code"] == 20409
    mine = [o for o in await operations_of(client) if o == retried[0].json()["operationId"]]
    assert len(await operations_of(client)) == 1 and mine
    again = await client.post("/v1/Messages", json=body, headers=keyed("k-slow"))
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == retried[0].json()
