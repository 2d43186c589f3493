"""Idempotency keys: claim a key atomically, read what it answered, record its answer.

A claim is one INSERT that does nothing on conflict, so two API processes racing with the
same key cannot both win. The winner's row says "in flight" until its answer is recorded;
the send path records it in the transaction of the send itself, so a 202 and its key commit
together or not at all.
"""

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.store.tables import idempotency_keys as keys

TTL_MS = 24 * 3600 * 1000
LOCK_MS = 60 * 1000  # a request in flight longer than this is taken to have died


class KeyTakenOver(Exception):
    """The key's lock lapsed and another request took it over: this request must write
    nothing (its send is rolled back), or both would send."""


def lock_of(claimed_at: int) -> int:
    """The fencing token of a claim made at `claimed_at`: its `locked_until`. A takeover
    writes a later one, so a late answer from the first request matches no row."""
    return claimed_at + LOCK_MS


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    status: int | None  # None: the first request is still in flight
    headers: list[tuple[str, str]]
    body: str
    locked_until: int
    expires_at: int


def _insert(dialect: str):  # type: ignore[no-untyped-def]
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(keys)


async def claim(
    conn: AsyncConnection, account: str, key: str, fingerprint: str, now: int
) -> Stored | None:
    """Takes the key for a new request: None when taken, else what the key holds already.

    An expired key, or one whose first request died in flight with the same body, is taken
    over.
    """
    row = {
        "account_sid": account,
        "key": key,
        "fingerprint": fingerprint,
        "locked_until": lock_of(now),
        "expires_at": now + TTL_MS,
    }
    statement = _insert(conn.dialect.name).values(**row).on_conflict_do_nothing()
    if (await conn.execute(statement)).rowcount == 1:
        return None
    stored = await _get(conn, account, key)
    if stored is None:
        return await claim(conn, account, key, fingerprint, now)  # deleted meanwhile
    abandoned = stored.status is None and stored.locked_until < now
    if stored.expires_at < now or (abandoned and stored.fingerprint == fingerprint):
        taken = await conn.execute(
            update(keys)
            .where(keys.c.account_sid == account, keys.c.key == key)
            .where(keys.c.locked_until == stored.locked_until)
            .values(**row, status=None, headers=None, body=None)
        )
        if taken.rowcount == 1:
            return None
    return stored


async def _get(conn: AsyncConnection, account: str, key: str) -> Stored | None:
    row = (
        await conn.execute(
            select(
                keys.c.fingerprint,
                keys.c.status,
                keys.c.headers,
                keys.c.body,
                keys.c.locked_until,
                keys.c.expires_at,
            ).where(keys.c.account_sid == account, keys.c.key == key)
        )
    ).first()
    if row is None:
        return None
    headers = [tuple(pair) for pair in orjson.loads(row.headers)] if row.headers else []
    return Stored(
        row.fingerprint, row.status, headers, row.body or "", row.locked_until, row.expires_at
    )


async def record(
    conn: AsyncConnection,
    account: str,
    key: str,
    lock: int,
    status: int,
    headers: list[tuple[str, str]],
    body: str,
) -> bool:
    """Records the answer of the claim holding `lock`; False when the key was taken over."""
    result = await conn.execute(
        update(keys)
        .where(keys.c.account_sid == account, keys.c.key == key)
        .where(keys.c.locked_until == lock, keys.c.status.is_(None))
        .values(status=status, headers=orjson.dumps(headers).decode(), body=body)
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class Answer:
    """A request's answer, to record under its key in the very transaction (or statement)
    of the write it answers: store/sends.write_send takes one, so a crash between the
    commit and the answer leaves a key that replays, not one that sends again."""

    account: str
    key: str
    lock: int  # the claim's fencing token (lock_of)
    status: int
    headers: list[tuple[str, str]]
    body: str

    def params(self) -> tuple[Any, ...]:
        """In the order of SQLITE_RECORD and pg_record_cte's placeholders."""
        headers = orjson.dumps(self.headers).decode()
        return (self.status, headers, self.body, self.account, self.key, self.lock)


async def record_answer(conn: AsyncConnection, answer: Answer) -> None:
    """Records `answer` in the caller's transaction; KeyTakenOver (roll it back) when the
    claim lapsed and another request holds the key now."""
    recorded = await record(
        conn, answer.account, answer.key, answer.lock, answer.status, answer.headers, answer.body
    )
    if not recorded:
        raise KeyTakenOver(answer.key)


_SET = (
    "SET status = {}, headers = {}, body = {} WHERE account_sid = {} AND key = {}"
    " AND locked_until = {} AND status IS NULL"
)
SQLITE_RECORD = f"UPDATE {keys.name} " + _SET.format(*"??????")


def record_sqlite(conn: sqlite3.Connection, answer: Answer) -> None:
    """`record_answer` on a raw connection (the SQLite group commit's savepoint)."""
    if conn.execute(SQLITE_RECORD, answer.params()).rowcount != 1:
        raise KeyTakenOver(answer.key)


def pg_record_cte(first: int) -> str:
    """`record_answer` as CTEs for a one-statement write whose Answer.params are bound
    from `$first` on. `answer_guard` divides by the rows recorded: the statement must
    join it and test its value, so that a key taken over (no row recorded) aborts the
    whole statement with division_by_zero, which the caller turns into KeyTakenOver."""
    marks = [f"${n}" for n in range(first, first + 6)]
    marks[0] += "::integer"
    marks[5] += "::bigint"
    return (
        f"answer AS (UPDATE {keys.name} " + _SET.format(*marks) + " RETURNING 1),"
        " answer_guard AS MATERIALIZED"
        " (SELECT 1 / (SELECT count(*)::integer FROM answer) AS recorded)"
    )


async def release(conn: AsyncConnection, account: str, key: str, lock: int) -> None:
    """Forgets an in-flight key whose request took nothing (a 5xx): a retry runs afresh.
    Fenced: a key another request took over stays its."""
    await conn.execute(
        delete(keys).where(
            keys.c.account_sid == account,
            keys.c.key == key,
            keys.c.locked_until == lock,
            keys.c.status.is_(None),
        )
    )


async def purge(conn: AsyncConnection, now: int) -> int:
    result = await conn.execute(delete(keys).where(keys.c.expires_at < now))
    return int(result.rowcount or 0)
