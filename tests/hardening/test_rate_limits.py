"""Per-account rate limits: requests on every endpoint, recipients of sends; shared by every
API process on PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from opencomms.api.app import create_app
from opencomms.api.ratelimit import Limits
from opencomms.config import Settings
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from tests.conftest import SECRET, new_account
from tests.hardening.processes import launch

ONE = {"to": [{"address": "+14155550100", "channel": "PHONE"}], "content": {"text": "Hi"}}


def limited_client(db: Database, credential: NewCredential, limits: Limits) -> httpx.AsyncClient:
    app = create_app(db, Settings(secret_key=SECRET), limits)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        auth=(credential.sid, credential.secret),
    )


@pytest.fixture
async def slow_client(db: Database, account: NewCredential) -> AsyncIterator[httpx.AsyncClient]:
    # 0.5 per second: nothing refills while the test runs.
    async with limited_client(db, account, Limits(requests_per_second=0.5, burst=5)) as client:
        yield client


def assert_headers(response: httpx.Response) -> None:
    assert response.headers["ratelimit-limit"] == "5"
    assert response.headers["ratelimit-remaining"].isdigit()
    assert response.headers["ratelimit-reset"].isdigit()


async def test_past_the_burst_a_429_with_every_header(slow_client: httpx.AsyncClient) -> None:
    answers = [await slow_client.get("/v1/Messages") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0"]
    for answer in answers:
        assert_headers(answer)
    refused = await slow_client.post("/v1/Messages", json=ONE)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == 20429
    assert int(refused.headers["retry-after"]) >= 1
    assert_headers(refused)


async def test_limits_are_per_account(db: Database, slow_client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await slow_client.get("/v1/Messages")
    assert (await slow_client.get("/v1/Messages")).status_code == 429
    other = await new_account(db, SecretBox(SECRET))
    async with limited_client(db, other, Limits(requests_per_second=0.5, burst=5)) as client:
        assert (await client.get("/v1/Messages")).status_code == 200


async def test_health_and_anonymous_requests_are_not_counted(
    slow_client: httpx.AsyncClient,
) -> None:
    for _ in range(10):
        assert (await slow_client.get("/healthz")).status_code == 200
    assert (await slow_client.get("/v1/Messages")).headers["ratelimit-remaining"] == "4"


async def test_recipients_per_minute_count_recipients(db: Database, account: NewCredential) -> None:
    limits = Limits(recipients_per_minute=10)
    eight = {**ONE, "to": [{"address": f"+1415555010{i}", "channel": "PHONE"} for i in range(8)]}
    async with limited_client(db, account, limits) as client:
        assert (await client.post("/v1/Messages", json=eight)).status_code == 202
        refused = await client.post("/v1/Messages", json=eight)
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["code"] == 20429
        assert "recipients" in refused.json()["errors"][0]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        assert (await client.post("/v1/Messages", json=ONE)).status_code == 202  # 9 of 10
        page = (await client.get("/v1/Messages/Operations")).json()
    assert len(page["operations"]) == 2  # the refused send wrote nothing


async def test_no_limit_no_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/Messages")
    assert "ratelimit-limit" not in response.headers


@pytest.mark.slow
def test_two_api_processes_share_one_allowance(pg_url: str, tmp_path: Path) -> None:
    env = {"OPENCOMMS_RATE_REQUESTS_PER_SECOND": "0.2", "OPENCOMMS_RATE_BURST": "10"}
    first = launch(pg_url, tmp_path, "--no-worker", env=env)
    second = launch(pg_url, tmp_path, "--no-worker", env=env, credentials=first.auth)

    async def both() -> list[httpx.Response]:
        async with (
            httpx.AsyncClient(base_url=first.base_url, auth=first.auth) as a,
            httpx.AsyncClient(base_url=second.base_url, auth=first.auth) as b,
        ):
            return await asyncio.gather(*(c.get("/v1/Messages") for c in (a, b) * 12))

    try:
        answers = asyncio.run(both())
    finally:
        first.stop()
        second.stop()
    statuses = [a.status_code for a in answers]
    # 10 at once, and at most one more refilled while the 24 requests ran.
    assert 10 <= statuses.count(200) <= 11, statuses
    assert statuses.count(429) == 24 - statuses.count(200)
