"""Schemathesis against the spec's Senders and SenderPools operations, on a real server.

The server's account declares senders carrying the spec's example ids and owns a pool with
the example pool id, so the example phase reaches real records, not only 404s. Bounded like
the Messages run: it must find no server error and no answer that breaks the spec.
"""

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from opencomms.clock import now_ms
from opencomms.domain.sender_pools import SenderPoolRecord
from opencomms.store import migrate, sender_pools, tables
from opencomms.store.db import open_database
from tests.acceptance.server import ServerProcess
from tests.acceptance.test_conformance import CHECKS
from tests.api.inventory import declare, declared
from tests.conftest import PG_ADMIN_URL, SKIP_PG

SPEC = Path(__file__).parents[2] / "src" / "opencomms" / "spec" / "twilio_comms_v1.yaml"
schema = schemathesis.openapi.from_path(SPEC).include(path_regex="^/Sender")
EXAMPLE_POOL = "comms_senderpool_01h9krwprkeee8fzqspvwy6nq8"


async def _seed(database_url: str, account_sid: str) -> None:
    db = open_database(database_url)
    try:
        await declare(db, declared(account_sid, examples=True))
        async with db.write() as conn:
            # The session's PostgreSQL database may hold the example pool from an earlier run.
            await conn.execute(
                tables.sender_pools.delete().where(tables.sender_pools.c.id == EXAMPLE_POOL)
            )
            now = now_ms()
            await sender_pools.insert_pool(
                conn, SenderPoolRecord(EXAMPLE_POOL, account_sid, "Example", {}, now, now)
            )
    finally:
        await db.dispose()


@pytest.fixture
async def db_url(dialect: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own: the session's PostgreSQL one holds every other test's accounts,
    and a server start gives each of them its default senders, which can outlast the start
    timeout on a loaded machine."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'opencomms.db'}"
        return
    if SKIP_PG:
        pytest.skip("OPENCOMMS_SKIP_PG=1")
    name = "opencomms_senders_" + secrets.token_hex(4)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db = open_database(url)
    await migrate.upgrade(db)
    await db.dispose()
    yield url
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def live(server: ServerProcess) -> ServerProcess:
    asyncio.run(_seed(server.database_url, server.account_sid))
    return server


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_sender_operations_conform(case: schemathesis.Case, live: ServerProcess) -> None:
    case.call_and_validate(base_url=live.base_url + "/v1", auth=live.auth, checks=CHECKS)
