"""A database that cannot be reached or refuses writes: 503 in the error shape with
Retry-After and `Connection: close`, a readiness answer that leaks nothing, and recovery
without a restart."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from opencomms.store import migrate
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database, open_database, write_refusal
from tests.conftest import SECRET, make_client, new_account

SIMPLE = {"to": [{"address": "+14155550100", "channel": "PHONE"}], "content": {"text": "Hi"}}


def unreachable_url(dialect: str, tmp_path: Path) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'opencomms.db'}"
    return "postgresql://nobody@127.0.0.1:1/none"


@pytest.fixture
async def unreachable(dialect: str, tmp_path: Path) -> AsyncIterator[Database]:
    db = open_database(unreachable_url(dialect, tmp_path))
    yield db
    await db.dispose()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.json()["errors"][0]["code"] == 20503
    assert set(response.json()["errors"][0]) == {"code", "message", "infoUrl", "context"}


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_requests_get_a_503_with_retry_after(unreachable: Database, method: str) -> None:
    credential = NewCredential("AC" + "0" * 32, "secret", "AC" + "0" * 32)
    async with make_client(unreachable, credential) as client:
        if method == "POST":
            response = await client.post("/v1/Messages", json=SIMPLE)
        else:
            response = await client.get("/v1/Messages")
    assert_unavailable(response)
    assert response.headers["connection"] == "close"


async def test_readiness_tells_nothing_of_the_driver(unreachable: Database) -> None:
    async with make_client(unreachable, None) as anonymous:
        response = await anonymous.get("/readyz")
        alive = await anonymous.get("/healthz")
    assert_unavailable(response)
    assert response.json()["errors"][0]["message"] == "The database is not reachable"
    assert alive.status_code == 200


async def test_readiness_probes_a_write_and_leaves_nothing(db: Database) -> None:
    assert await write_refusal(db) is None
    async with make_client(db, None) as anonymous:
        assert (await anonymous.get("/readyz")).status_code == 200


async def test_a_read_only_postgresql_is_not_ready(pg_url: str) -> None:
    db = open_database(pg_url)
    try:
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            await conn.commit()
        # That connection goes back to the pool read-only: the probe takes it.
        assert await write_refusal(db) == "read-only"
    finally:
        await db.dispose()


async def test_a_sqlite_connection_that_went_read_only_is_not_kept(tmp_path: Path) -> None:
    """A connection opened while the file was read-only stays read-only: it is dropped
    on its first refused write, and the next one is opened afresh."""
    url = f"sqlite:///{tmp_path / 'opencomms.db'}"
    db = open_database(url, pool_size=1)
    await migrate.upgrade(db)
    await new_account(db, SecretBox(SECRET))
    try:
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA query_only = ON")  # as a read-only open is
        assert await write_refusal(db) == "read-only"
        assert await write_refusal(db) is None  # a new connection, writable again
    finally:
        await db.dispose()
