"""Databases the queue tests own alone.

The root conftest's PostgreSQL database is shared by the whole session, but a worker claims
every due message in its database, so queue tests get their own database (created once,
emptied before each test). Import `queue_pg_url` and `db` into a test module or conftest to
use them; they take the dialect parameter and the PostgreSQL server from tests/conftest.py.
"""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from opencomms.store import migrate
from opencomms.store.db import Database, open_database
from opencomms.store.tables import metadata
from tests.conftest import PG_ADMIN_URL, SKIP_PG


def _admin_dsn() -> str:
    return PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")


@pytest.fixture(scope="session")
async def queue_pg_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database for queue tests only; dropped after the session."""
    if SKIP_PG:
        pytest.skip("OPENCOMMS_SKIP_PG=1")
    name = "opencomms_test_queue_" + secrets.token_hex(4)
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _admin_dsn().rsplit("/", 1)[0] + "/" + name
    database = open_database(url)
    await migrate.upgrade(database)
    await database.dispose()
    yield url
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def db_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = request.getfixturevalue("queue_pg_url")
    return url


async def _emptied(url: str) -> Database:
    database = open_database(url)
    if database.is_sqlite:
        await migrate.upgrade(database)
    else:
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        async with database.write() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    return database


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """An open, migrated, empty database of the test's dialect."""
    database = await _emptied(db_url)
    yield database
    await database.dispose()


@pytest.fixture
async def pg_db(queue_pg_url: str) -> AsyncIterator[Database]:
    """The same on PostgreSQL alone, for what only PostgreSQL does."""
    database = await _emptied(queue_pg_url)
    yield database
    await database.dispose()
