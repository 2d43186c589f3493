"""The reads use their indexes, on a bulk-loaded table whose statistics autovacuum never wrote.

This machine's PostgreSQL runs with autovacuum off: without the accept path's ANALYZE
(store/analyze.py) a freshly loaded table looks empty to the planner, which then sorts a whole
account's messages for each 50-row page.
"""

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.api.app import create_app
from opencomms.config import Settings
from opencomms.domain.records import MessageFilter
from opencomms.store import fast_reads, reads
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from tests.conftest import SECRET

BULK = 12_000  # past StatsKeeper's 10,000-row threshold
# A page of an account's newest messages walks an index in id order: the account's own, or
# the primary key's when the account holds most rows (as the only account here may).
_NEWEST_FIRST = ("ix_messages_account_id", "messages_pkey", "sqlite_autoindex_messages_1")


async def plan(conn: AsyncConnection, query: Select[Any]) -> str:
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "postgresql":
        rows = (await conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"))).scalar_one()
        return orjson.dumps(rows).decode()
    rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
    return " | ".join(str(row[-1]) for row in rows)


def assert_index(found: str, *indexes: str, sorted_by_index: bool = False) -> None:
    assert any(index in found for index in indexes), found
    assert "Seq Scan" not in found and "SCAN messages " not in found, found
    if sorted_by_index:  # the index gives the order: no sort of the matching rows
        assert '"Sort"' not in found and "TEMP B-TREE" not in found, found


@pytest.fixture
async def loaded(db: Database, account: NewCredential) -> dict[str, str]:
    """Bulk sends through the real app (so its StatsKeeper sees them), then a 10-message
    operation among them: the ids to read."""
    app = create_app(db, Settings(secret_key=SECRET))
    transport = httpx.ASGITransport(app=app)
    auth = (account.sid, account.secret)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
        to = [{"address": f"+1415555{i:04d}", "channel": "PHONE"} for i in range(BULK // 2)]
        for _ in range(2):  # a send takes at most 10,000 recipients
            sent = await client.post("/v1/Messages", json={"to": to, "content": {"text": "hi"}})
            assert sent.status_code == 202, sent.text
        small = await client.post("/v1/Messages", json={"to": to[:10], "content": {"text": "x"}})
        page = await client.get("/v1/Messages", params={"pageSize": 1})
    await app.state.opencomms.stats.wait()
    message = page.json()["messages"][0]["id"]
    return {"operation": small.json()["operationId"], "message": message}


async def test_each_read_uses_its_index(
    db: Database, account: NewCredential, loaded: dict[str, str]
) -> None:
    everything = MessageFilter()
    by_operation = MessageFilter(operation_id=loaded["operation"])
    async with db.read() as conn:
        dialect = conn.dialect.name
        page = reads.list_query(dialect, account.sid, everything, before_id=None, limit=51)
        assert_index(await plan(conn, page), *_NEWEST_FIRST, sorted_by_index=True)
        later = reads.list_query(
            conn.dialect.name, account.sid, everything, before_id=loaded["message"], limit=51
        )
        assert_index(await plan(conn, later), *_NEWEST_FIRST, sorted_by_index=True)
        of_operation = reads.list_query(
            conn.dialect.name, account.sid, by_operation, before_id=None, limit=51
        )
        assert_index(await plan(conn, of_operation), "ix_messages_operation_status", *_NEWEST_FIRST)
        counts, tries = reads.stats_queries([loaded["operation"]])
        assert_index(await plan(conn, counts), "ix_messages_operation_status")
        assert_index(await plan(conn, tries), "ix_attempts_operation")


async def direct_plan(db: Database, sql: str, args: Any) -> str:
    """The plan of a fast read's constant SQL (store/fast_reads.py), with its arguments."""
    assert db.direct is not None
    if db.dialect == "postgresql":
        (rows,) = await db.direct.run([(f"EXPLAIN (FORMAT JSON) {sql}", args)])
        return str(rows[0][0])
    (rows,) = await db.direct.run([(f"EXPLAIN QUERY PLAN {sql}", args)])
    return " | ".join(str(row[-1]) for row in rows)


async def test_each_fast_read_uses_its_index(
    db: Database, account: NewCredential, loaded: dict[str, str]
) -> None:
    everything = MessageFilter()
    by_operation = MessageFilter(operation_id=loaded["operation"])
    for before in (None, loaded["message"]):
        page = fast_reads.list_statement(
            db.dialect, account.sid, everything, before_id=before, limit=51
        )
        assert_index(await direct_plan(db, *page), *_NEWEST_FIRST, sorted_by_index=True)
    of_operation = fast_reads.list_statement(
        db.dialect, account.sid, by_operation, before_id=None, limit=51
    )
    found = await direct_plan(db, *of_operation)
    assert_index(found, "ix_messages_operation_status", *_NEWEST_FIRST)
    # The session index is partial (only messages with a session): `session_id = ?` uses it,
    # and gives the page its order.
    by_session = MessageFilter(session_id="comms_session_" + "0" * 26)
    of_session = fast_reads.list_statement(
        db.dialect, account.sid, by_session, before_id=None, limit=51
    )
    assert_index(await direct_plan(db, *of_session), "ix_messages_session", sorted_by_index=True)
    message = await direct_plan(db, fast_reads.MESSAGE_SQL, (loaded["message"], account.sid))
    # A point lookup: the primary key, or (account_sid, id), which holds it too.
    assert_index(message, "messages_pkey", "sqlite_autoindex_messages_1", "ix_messages_account_id")
    tries = await direct_plan(db, fast_reads.ATTEMPTS_SQL, (loaded["message"],))
    assert_index(tries, "ix_attempts_message")
    if db.dialect == "postgresql":  # the message with its attempts, in one statement
        one = await direct_plan(db, fast_reads.PG_MESSAGE_SQL, (loaded["message"], account.sid))
        assert_index(one, "messages_pkey", "ix_messages_account_id")
        assert "ix_attempts_message" in one, one
    args = (loaded["operation"], account.sid, "MESSAGES")
    operation = await direct_plan(db, fast_reads.OPERATION_SQL, args)
    keys = ("operations_pkey", "sqlite_autoindex_operations_1", "ix_operations_account")
    assert any(key in operation for key in keys), operation
    assert "Seq Scan" not in operation and "SCAN operations" not in operation, operation
