"""SQLite group commit: shared transactions, a failing send rolled back alone, results only
after the commit."""

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from opencomms.store.group_commit import GroupCommitter


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "group.db"
    with sqlite3.connect(file) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    return file


def inserting(key: str) -> Callable[[sqlite3.Connection], str]:
    def job(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (key,))
        return key

    return job


def keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:  # another connection: sees committed rows only
        return {row[0] for row in conn.execute("SELECT k FROM t")}


async def test_waiting_jobs_share_a_commit_and_each_sees_its_own_result(path: Path) -> None:
    group = GroupCommitter(path, asyncio.Lock())
    results = await asyncio.gather(*(group.run(inserting(f"k{i}")) for i in range(50)))
    assert results == [f"k{i}" for i in range(50)]
    assert keys(path) == set(results)  # committed before any caller heard back
    assert group.commits < 50  # 50 sends, fewer fsyncs
    await group.aclose()


async def test_a_failing_job_rolls_back_alone(path: Path) -> None:
    group = GroupCommitter(path, asyncio.Lock())

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES ('partial')")
        raise ValueError("refused")

    outcomes = await asyncio.gather(
        group.run(inserting("a")),
        group.run(half_then_fail),
        group.run(inserting("b")),
        return_exceptions=True,
    )
    assert outcomes[0] == "a" and outcomes[2] == "b"
    assert isinstance(outcomes[1], ValueError)
    assert keys(path) == {"a", "b"}  # nothing of the failed job, not even its first row
    await group.aclose()


async def test_a_constraint_violation_fails_only_its_sender(path: Path) -> None:
    group = GroupCommitter(path, asyncio.Lock())
    outcomes = await asyncio.gather(
        group.run(inserting("x")), group.run(inserting("x")), return_exceptions=True
    )
    assert outcomes[0] == "x"
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    assert keys(path) == {"x"}
    await group.aclose()


async def test_it_reopens_after_being_closed(path: Path) -> None:
    group = GroupCommitter(path, asyncio.Lock())
    await group.run(inserting("before"))
    await group.aclose()
    await group.run(inserting("after"))
    assert keys(path) == {"before", "after"}
    await group.aclose()


async def test_it_takes_the_write_turn(path: Path) -> None:
    turn = asyncio.Lock()
    group = GroupCommitter(path, turn)
    await turn.acquire()  # another writer of this process holds the database
    pending = asyncio.ensure_future(group.run(inserting("later")))
    await asyncio.sleep(0.05)
    assert not pending.done() and keys(path) == set()
    turn.release()
    assert await pending == "later"
    await group.aclose()
