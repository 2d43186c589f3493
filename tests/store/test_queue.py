"""The queue's SQL on both dialects: claims, leases, fencing and the set-based writes."""

import asyncio

import pytest
from sqlalchemy import select, update

from opencomms.domain.status import OperationStatus
from opencomms.domain.transitions import MessageTransition, StatusChanges
from opencomms.store import operation_status, queue
from opencomms.store.db import Database, open_database
from opencomms.store.operation_status import Facts, aggregate
from opencomms.store.tables import messages
from tests.dispatch.databases import db, db_url, pg_db, queue_pg_url
from tests.dispatch.helpers import FakeClock, body, message_rows, operation_row, send

__all__ = ["db", "db_url", "pg_db", "queue_pg_url"]  # the queue tests' own, empty databases

LEASE = 30_000


async def claim(db: Database, now: int, limit: int = 100, owner: str = "w") -> list[queue.Claim]:
    async with db.write() as conn:
        return await queue.claim(conn, owner=owner, now=now, lease_ms=LEASE, limit=limit)


def write(c: queue.Claim, status: str, token: int | None = None) -> queue.MessageWrite:
    return queue.MessageWrite(
        c.id, c.lease_token if token is None else token, c.status, status, None,
        None, None, c.route_index, c.channel, c.sender,
    )  # fmt: skip


async def test_claims_only_due_addressable_unleased_messages(db: Database) -> None:
    clock = FakeClock()
    request = body("+14155550100", "+14155550101", "+14155550102")
    request["to"].append(
        {
            "profileId": "mem_profile_01h9krwprkeee8fzqspvwy6nq8",
            "memoryStoreId": "mem_store_01h9krwprkeee8fzqspvwy6nq8",
        }
    )
    op = await send(db, request, now=clock.now)
    rows = await message_rows(db, op)
    async with db.write() as conn:  # one message is not due yet
        later = update(messages).where(messages.c.id == rows[2]["id"])
        await conn.execute(later.values(next_attempt_at=clock.now + 5000))

    first = await claim(db, clock.now, limit=1)
    assert [c.id for c in first] == [rows[0]["id"]]
    assert (first[0].lease_token, first[0].status, first[0].valid_from) == (1, "QUEUED", clock.now)
    second = await claim(db, clock.now)
    assert [c.id for c in second] == [rows[1]["id"]]  # leased and future ones are skipped
    assert await claim(db, clock.now) == []
    leased = (await message_rows(db, op))[0]
    assert (leased["lease_owner"], leased["lease_expires_at"]) == ("w", clock.now + LEASE)
    assert leased["next_attempt_at"] == clock.now + LEASE  # an expired lease falls due again


async def test_an_expired_lease_is_reclaimed_with_a_new_token(db: Database) -> None:
    clock = FakeClock()
    await send(db, body("+14155550100"), now=clock.now)
    [old] = await claim(db, clock.now, owner="a")
    [new] = await claim(db, clock.now + LEASE, owner="b")
    assert (new.id, new.lease_token) == (old.id, old.lease_token + 1)
    async with db.write() as conn:
        assert (
            await queue.write_messages(conn, [write(old, "FAILED")], clock.now, StatusChanges())
            == set()
        )
        assert await queue.write_messages(
            conn, [write(new, "FAILED")], clock.now, StatusChanges()
        ) == {new.id}
    async with db.write() as conn:  # the second write found the lease released
        assert (
            await queue.write_messages(conn, [write(new, "SENT")], clock.now, StatusChanges())
            == set()
        )


async def test_set_based_writes_carry_nulls_quotes_and_unicode(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100"), now=clock.now)
    [c] = await claim(db, clock.now)
    why = 'It\'s "broken" — ünïcödé ✓'
    row = queue.MessageWrite(
        c.id, c.lease_token, c.status, "FAILED", None, 30008, why, 0, None, None
    )
    async with db.write() as conn:
        assert await queue.write_messages(conn, [row], clock.now, StatusChanges()) == {c.id}
    [stored] = await message_rows(db, op)
    assert (stored["error_message"], stored["channel"], stored["sender"]) == (why, None, None)
    assert (stored["next_attempt_at"], stored["lease_owner"]) == (None, None)


async def test_pg_concurrent_claims_skip_each_others_rows(
    pg_db: Database, queue_pg_url: str
) -> None:
    """SQLite has one writer, so only PostgreSQL's claims can overlap."""
    db = pg_db
    clock = FakeClock()
    await send(db, body(*[f"+1415555{i:04d}" for i in range(10)]), now=clock.now)
    other = open_database(queue_pg_url)
    try:
        async with db.write() as first:
            mine = await queue.claim(first, owner="a", now=clock.now, lease_ms=LEASE, limit=4)
            # Still uncommitted: another worker must neither wait for these rows nor take them.
            async with other.write() as second:
                theirs = await asyncio.wait_for(
                    queue.claim(second, owner="b", now=clock.now, lease_ms=LEASE, limit=100), 5
                )
    finally:
        await other.dispose()
    assert len(mine) == 4 and len(theirs) == 6
    assert not {c.id for c in mine} & {c.id for c in theirs}


async def test_apply_keeps_the_operation_equal_to_its_messages(db: Database) -> None:
    clock = FakeClock()
    op = await send(db, body("+14155550100", "+14155550101"), now=clock.now)
    async with db.write() as conn:
        moved = await conn.execute(
            update(messages)
            .where(messages.c.operation_id == op)
            .values(status="DELIVERED")
            .returning(messages.c.id, messages.c.account_sid)
        )
        changes = StatusChanges(
            [MessageTransition(m, op, a, "QUEUED", "DELIVERED") for m, a in moved]
        )
        await operation_status.apply(conn, changes, clock.now + 5)
        assert [(t.from_status, t.to_status) for t in changes.operations] == [
            ("PROCESSING", "COMPLETED")
        ]
    row = await operation_row(db, op)
    assert (row["status"], row["updated_at"]) == ("COMPLETED", clock.now + 5)
    async with db.read() as conn:
        query = select(messages.c.status).where(messages.c.operation_id == op)
        assert {s for (s,) in await conn.execute(query)} == {"DELIVERED"}


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        (Facts(active=True, scheduled=True, progressed=False, canceled=False), "PROCESSING"),
        (Facts(active=False, scheduled=True, progressed=False, canceled=False), "SCHEDULED"),
        (Facts(active=False, scheduled=True, progressed=True, canceled=False), "PROCESSING"),
        (Facts(active=False, scheduled=False, progressed=True, canceled=False), "COMPLETED"),
        (Facts(active=False, scheduled=False, progressed=False, canceled=False), "COMPLETED"),
        (Facts(active=False, scheduled=False, progressed=True, canceled=True), "CANCELED"),
    ],
)
def test_aggregate(facts: Facts, status: str) -> None:
    assert aggregate(facts) == OperationStatus(status)
