"""A database that cannot be reached or refuses writes: 503 in the error shape with
Retry-After and `Connection: close`, a readiness answer that leaks nothing, and recovery
without a restart."""

import errno
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from opencomms.store import migrate
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database, open_database, write_refusal
from tests.conftest import PG_ADMIN_URL, SECRET, make_client, new_account

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


@pytest.fixture
async def throwaway_pg(pg_url: str) -> AsyncIterator[str]:
    """A database of its own, migrated, for tests that make it refuse writes."""
    name = "opencomms_ready_" + secrets.token_hex(4)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = pg_url.rsplit("/", 1)[0] + "/" + name
        db = open_database(url)
        await migrate.upgrade(db)
        await db.dispose()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def readiness(db: Database) -> httpx.Response:
    async with make_client(db, None) as anonymous:
        return await anonymous.get("/readyz")


async def test_a_read_only_postgresql_database_is_not_ready_and_recovers(
    pg_url: str, throwaway_pg: str
) -> None:
    """A database switched to read-only (as a standby is): /readyz says so in fixed words;
    switched back, the pooled connection that was read-only is not reused."""
    db = open_database(pg_url.rsplit("/", 1)[0] + "/" + throwaway_pg, pool_size=1)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        assert (await readiness(db)).status_code == 200
        await admin.execute(
            f'ALTER DATABASE "{throwaway_pg}" SET default_transaction_read_only = on'
        )
        await db.engine.dispose()  # connections opened from now on are read-only
        refused = await readiness(db)
        assert_unavailable(refused)
        message = refused.json()["errors"][0]["message"]
        assert message == "The database does not accept writes (read-only)"
        await admin.execute(f'ALTER DATABASE "{throwaway_pg}" RESET default_transaction_read_only')
        assert (await readiness(db)).status_code == 200
    finally:
        await admin.close()
        await db.dispose()


@contextmanager
def tiny_tmpfs() -> Iterator[Path]:
    """A 1 MiB tmpfs that the PostgreSQL server (local, run by `postgres`) can write to."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = Path(tempfile.mkdtemp(prefix="opencomms-tiny-"))
    command = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)]
    mounted = subprocess.run(command, check=False)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.chown(folder, "postgres", "postgres")
        folder.chmod(0o700)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
        folder.rmdir()


def fill(folder: Path) -> Path:
    """Fills the file system of `folder` to the last byte."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


async def test_a_full_disk_on_postgresql_is_not_ready_and_recovers(
    pg_url: str, throwaway_pg: str
) -> None:
    """The probe table on a tablespace whose disk is full: /readyz says the disk is full
    (its write must allocate space; an update in place would not notice), then ready once
    space is freed, without a restart."""
    if not PG_ADMIN_URL.startswith("postgresql://postgres@127.0.0.1"):
        pytest.skip("needs the PostgreSQL server on this machine")
    space = "opencomms_tiny_" + secrets.token_hex(4)
    url = pg_url.rsplit("/", 1)[0] + "/" + throwaway_pg
    with tiny_tmpfs() as folder:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f"CREATE TABLESPACE {space} LOCATION '{folder}'")
        db = open_database(url)
        try:
            async with db.write() as conn:
                await conn.exec_driver_sql(f"ALTER TABLE readiness_probe SET TABLESPACE {space}")
            assert (await readiness(db)).status_code == 200
            filler = fill(folder)
            refused = await readiness(db)
            assert_unavailable(refused)
            assert refused.json()["errors"][0]["message"] == "The database's disk is (nearly) full"
            filler.unlink()
            assert (await readiness(db)).status_code == 200
        finally:
            async with db.write() as conn:
                await conn.exec_driver_sql("ALTER TABLE readiness_probe SET TABLESPACE pg_default")
            await db.dispose()
            await admin.execute(f'DROP DATABASE IF EXISTS "{throwaway_pg}" WITH (FORCE)')
            await admin.execute(f"DROP TABLESPACE IF EXISTS {space}")
            await admin.close()
