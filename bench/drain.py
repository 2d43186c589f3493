"""End-to-end drain: N messages from insert to the last DELIVERED, through the sandbox.

    .venv/bin/python bench/drain.py                       # SQLite file, one process
    .venv/bin/python bench/drain.py --database postgresql://postgres@127.0.0.1:5432/ --workers 2

With PostgreSQL a fresh database is created (and dropped afterwards) on that server, and the
workers are separate processes (`opencomms worker` is the same loop). Prints messages/s from
the first insert to the last DELIVERED, and the peak RSS of every process involved.
"""

import argparse
import asyncio
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select

from opencomms import ids
from opencomms.api import wire
from opencomms.clock import now_ms
from opencomms.dispatch import WorkerConfig, run_worker
from opencomms.domain.send import prepare
from opencomms.store import migrate, queue, sends
from opencomms.store.db import Database, open_database
from opencomms.store.tables import messages, operations

ACCOUNT = "AC" + "b" * 32


def request(size: int, offset: int) -> dict[str, Any]:
    return {
        "to": [
            {
                "address": f"+1415{(offset + i) % 10_000_000:07d}",
                "channel": "PHONE",
                "variables": {"name": f"customer {offset + i}"},
            }
            for i in range(size)
        ],
        "content": {"text": "Hello {{ name }}, your order has shipped."},
    }


async def insert(db: Database, operations: int, size: int) -> None:
    for index in range(operations):
        body = request(size, index * size)
        prepared = prepare(wire.send_command(body), datetime.now(UTC))
        async with db.write() as conn:
            await sends.insert_send(
                conn,
                account_sid=ACCOUNT,
                operation_id=ids.operation_id(),
                prepared=prepared,
                content=body["content"],
                sender=None,
                now=now_ms(),
            )
            await queue.notify(conn)


async def delivered(db: Database) -> int:
    async with db.read() as conn:
        query = select(func.count()).where(messages.c.status == "DELIVERED")
        return int((await conn.execute(query)).scalar_one())


async def wait_completed(db: Database, total: int) -> None:
    """Waits for every operation to complete (a cheap query on a ten-row table: counting
    100,000 messages over and over would slow down what is measured), then checks that
    every message was delivered."""
    unfinished = select(func.count()).where(operations.c.status != "COMPLETED")
    async with asyncio.timeout(600):
        while True:
            async with db.read() as conn:
                if not (await conn.execute(unfinished)).scalar_one():
                    break
            await asyncio.sleep(0.05)
    assert await delivered(db) == total


def report(total: int, seconds: float, rss_mb: dict[str, float]) -> None:
    print(f"{total} messages in {seconds:.2f}s: {total / seconds:,.0f} messages/s end to end")
    for who, mb in rss_mb.items():
        print(f"peak RSS {who}: {mb:.0f} MB")


def peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


async def bench_sqlite(path: Path, operations: int, size: int, config: WorkerConfig) -> None:
    db = open_database(f"sqlite:///{path}")
    await migrate.upgrade(db)
    stop = asyncio.Event()
    started = time.perf_counter()
    worker = asyncio.create_task(run_worker(db, config, stop))
    await insert(db, operations, size)
    await wait_completed(db, operations * size)
    elapsed = time.perf_counter() - started
    stop.set()
    await worker
    await db.dispose()
    report(operations * size, elapsed, {"(one process)": peak_rss_mb(resource.RUSAGE_SELF)})


async def create_pg_database(server: str) -> str:
    name = "opencomms_bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(server.rstrip("/") + "/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.rstrip("/") + "/" + name


async def drop_pg_database(url: str) -> None:
    server, name = url.rsplit("/", 1)
    admin = await asyncpg.connect(server + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def start_workers(url: str, count: int, batch_size: int) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, __file__, "--worker", url, "--batch-size", str(batch_size)]
    return [subprocess.Popen(command) for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for process in workers:
        process.terminate()
    for process in workers:
        process.wait(timeout=30)


async def bench_postgres(server: str, workers: int, operations: int, size: int, batch: int) -> None:
    url = await create_pg_database(server)
    db = open_database(url)
    try:
        await migrate.upgrade(db)
        processes = start_workers(url, workers, batch)
        await asyncio.sleep(2)  # let the workers import and connect before the clock starts
        started = time.perf_counter()
        await insert(db, operations, size)
        await wait_completed(db, operations * size)
        elapsed = time.perf_counter() - started
        stop_workers(processes)
        report(
            operations * size,
            elapsed,
            {
                "inserting process": peak_rss_mb(resource.RUSAGE_SELF),
                "largest worker process": peak_rss_mb(resource.RUSAGE_CHILDREN),
            },
        )
    finally:
        await db.dispose()
        await drop_pg_database(url)


async def worker_process(url: str, config: WorkerConfig) -> None:
    db = open_database(url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await run_worker(db, config, stop)
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", default=None, help="postgresql://server/ (default: SQLite)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (PostgreSQL)")
    parser.add_argument("--operations", type=int, default=10)
    parser.add_argument("--size", type=int, default=10_000, help="recipients per operation")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = WorkerConfig(batch_size=args.batch_size)
    if args.worker:
        asyncio.run(worker_process(args.worker, config))
    elif args.database and args.database.startswith("postgres"):
        asyncio.run(
            bench_postgres(args.database, args.workers, args.operations, args.size, args.batch_size)
        )
    else:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(bench_sqlite(Path(folder) / "bench.db", args.operations, args.size, config))


if __name__ == "__main__":
    main()
