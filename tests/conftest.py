"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is required: a test run that cannot reach it fails, unless OPENCOMMS_SKIP_PG=1 is
set on purpose (never in CI). Each test session gets its own PostgreSQL database.
"""

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from opencomms.api.app import create_app
from opencomms.clock import now_ms
from opencomms.config import Settings
from opencomms.store import accounts, inventory, migrate
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database, open_database

PG_ADMIN_URL = os.environ.get(
    "OPENCOMMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SKIP_PG = os.environ.get("OPENCOMMS_SKIP_PG") == "1"
SECRET = "test-server-key"
DIALECTS = ["sqlite", "postgresql"]


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    if SKIP_PG:
        pytest.skip("OPENCOMMS_SKIP_PG=1")
    name = "opencomms_test_" + secrets.token_hex(4)
    admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    db = open_database(_pg_url(name))
    await migrate.upgrade(db)
    await db.dispose()
    yield _pg_url(name)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL of the test's dialect; the SQLite file is new and not yet migrated."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'opencomms.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """An open, migrated database (PostgreSQL's is shared by the session: use fresh accounts)."""
    database = open_database(db_url)
    if database.is_sqlite:
        await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SECRET)


async def new_account(db: Database, box: SecretBox) -> NewCredential:
    """An account with the default sandbox senders, as `opencomms accounts create` makes."""
    async with db.write() as conn:
        created = await accounts.create_account(conn, box)
        await inventory.give_defaults(conn, created.sid, now_ms())
        return created


@pytest.fixture
async def account(db: Database, box: SecretBox) -> NewCredential:
    return await new_account(db, box)


def make_client(db: Database, credential: NewCredential | None) -> httpx.AsyncClient:
    app = create_app(db, Settings(secret_key=SECRET))
    auth = (credential.sid, credential.secret) if credential else None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", auth=auth
    )


@pytest.fixture
async def client(db: Database, account: NewCredential) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(db, account) as http:
        yield http


@pytest.fixture(scope="session")
def spec_path() -> Iterator[Path]:
    yield Path(__file__).parents[1] / "src" / "opencomms" / "spec" / "twilio_comms_v1.yaml"
