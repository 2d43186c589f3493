"""End-to-end drain benchmark: from the first `POST /v1/Messages` to the last DELIVERED.

Everything goes through real processes and the real HTTP API:

- SQLite: one `opencomms serve` (API and dispatch worker in one process, the default) on a
  SQLite file in a temporary directory.
- PostgreSQL: a fresh database `opencomms_bench_<hex>` (migrated, dropped at the end), one
  `opencomms serve --no-worker` and `--workers` (2) `opencomms worker` processes, each
  connected to the database before the clock starts.

The worker settings are the defaults, with OPENCOMMS_SANDBOX_DELAY=0 so the sandbox's DELIVERED
receipt follows SENT at once (`--batch-size` sets OPENCOMMS_BATCH_SIZE if given). The bodies of
`--operations` (10) sends of `--size` (10,000) recipients each (distinct +1415xxxxxxx numbers
on PHONE, one Liquid variable each, used by the content text) are serialized before the clock
starts, then posted back to back over HTTP with Basic auth; each must be answered 202.

The start is the wall clock (epoch ms) just before the first POST. Every ~0.5 s the client asks
`GET /v1/Messages/Operations/{id}` of the oldest operation not yet seen done (one request per
poll, so polling barely loads the server), until every operation is COMPLETED with
stats.delivered == size; it gives up `--timeout` (600) s after the first POST. The end is the
moment the last message became DELIVERED: max(messages.updated_at) of the DELIVERED rows (epoch
ms, written by the worker), read from the database once all is done.

Reported per database: messages, seconds, messages/s end to end and its ratio to the goal of
3,000 messages/s; the accept phase (all POSTs) on its own; when each operation was seen done;
the CPU seconds each process used until then; and the peak RSS (VmHWM) of each process, read
just before it is stopped (goal: under 300 MB).

Run it from the repository root (PostgreSQL as for bench/accept.py: postgresql://postgres@
127.0.0.1:5432 with trust auth, or OPENCOMMS_BENCH_PG_URL):

    .venv/bin/python bench/drain.py                         # SQLite, then PostgreSQL
    .venv/bin/python bench/drain.py --database sqlite --operations 2 --size 1000

Process output goes to server.log and worker-N.log in the temporary directory; the last lines
are shown if a process fails.
"""

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import orjson

from common import (
    JSON_HEADERS,
    BenchError,
    Child,
    CpuMeter,
    CpuUse,
    Credentials,
    api_client,
    database,
    load_average,
    peak_rss_mb,
    server,
    workers,
)

GOAL_PER_SECOND = 3_000.0
GOAL_RSS_MB = 300.0
POLL_S = 0.5
MAX_RECIPIENTS = 10_000  # per request, the API's limit
NUMBERS = 10_000_000  # +1415 and seven digits
TEXT = "Hello {{ name }}, your order has shipped."
LAST_DELIVERED = "SELECT max(updated_at), count(*) FROM messages WHERE status = 'DELIVERED'"


@dataclass(frozen=True)
class Options:
    operations: int
    size: int
    workers: int
    timeout_s: float
    batch_size: int | None

    @property
    def total(self) -> int:
        return self.operations * self.size

    def worker_env(self) -> dict[str, str]:
        env = {"OPENCOMMS_SANDBOX_DELAY": "0"}
        if self.batch_size is not None:
            env["OPENCOMMS_BATCH_SIZE"] = str(self.batch_size)
        return env


@dataclass(frozen=True)
class Fleet:
    """The processes under test: the server (first) and any separate workers."""

    base_url: str
    credentials: Credentials
    children: list[Child]

    def client(self) -> httpx.AsyncClient:
        return api_client(self.base_url, self.credentials, 1)


@dataclass(frozen=True)
class Result:
    database: str
    messages: int
    seconds: float
    accept_s: float
    cpu: CpuUse
    rss_mb: dict[str, float]
    load: str

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


# Request bodies, serialized before the clock starts.


def send_body(operation: int, size: int) -> bytes:
    first = operation * size
    recipients = [
        {"address": f"+1415{n:07d}", "channel": "PHONE", "variables": {"name": f"customer {n}"}}
        for n in range(first, first + size)
    ]
    return orjson.dumps({"to": recipients, "content": {"text": TEXT}})


# Processes.


@asynccontextmanager
async def fleet(
    kind: str, url: str, workdir: Path, credentials: Credentials, options: Options
) -> AsyncIterator[Fleet]:
    """SQLite: one `serve` with its worker. PostgreSQL: `serve --no-worker` and N workers."""
    env = options.worker_env()
    sqlite = kind == "sqlite"
    async with server(url, workdir, credentials, worker=sqlite, env=env) as running:
        if sqlite:
            yield Fleet(running.base_url, credentials, [running.child])
            return
        async with workers(url, workdir, options.workers, env) as started:
            yield Fleet(running.base_url, credentials, [running.child, *started])


def check_alive(children: Sequence[Child]) -> None:
    for child in children:
        child.check_alive()


# The run.


async def post_all(client: httpx.AsyncClient, bodies: list[bytes]) -> list[str]:
    """Posts every body back to back; returns the operation ids of the 202s."""
    ids: list[str] = []
    for body in bodies:
        response = await client.post("/v1/Messages", content=body, headers=JSON_HEADERS)
        if response.status_code != 202:
            raise BenchError(f"expected 202, got {response.status_code}: {response.text[:500]}")
        ids.append(response.json()["operationId"])
    return ids


async def operation_done(client: httpx.AsyncClient, operation_id: str, size: int) -> bool:
    """True once the operation is COMPLETED with every message DELIVERED."""
    response = await client.get(f"/v1/Messages/Operations/{operation_id}")
    if response.status_code != 200:
        raise BenchError(f"GET operation: {response.status_code}: {response.text[:500]}")
    operation = response.json()
    if operation["status"] != "COMPLETED":
        return False
    if operation["stats"]["delivered"] != size:
        raise BenchError(f"operation {operation_id} completed with {operation['stats']}")
    return True


async def wait_drained(
    client: httpx.AsyncClient, ids: list[str], fleet: Fleet, size: int
) -> list[float]:
    """Polls the oldest operation not yet done every POLL_S, until none is left; returns when
    (perf_counter) each was seen done."""
    pending = list(ids)
    seen: list[float] = []
    while pending:
        check_alive(fleet.children)
        while pending and await operation_done(client, pending[0], size):
            pending.pop(0)
            seen.append(time.perf_counter())
        if pending:
            await asyncio.sleep(POLL_S)
    return seen


async def last_delivered_ms(kind: str, url: str, total: int) -> int:
    """max(updated_at) of the DELIVERED messages, checking that there are `total` of them."""
    if kind == "sqlite":
        path = url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            last, count = conn.execute(LAST_DELIVERED).fetchone()
    else:
        conn = await asyncpg.connect(url)
        try:
            last, count = await conn.fetchrow(LAST_DELIVERED)
        finally:
            await conn.close()
    if count != total:
        raise BenchError(f"{count} DELIVERED messages in the database, expected {total}")
    return int(last)


async def drain(kind: str, url: str, fleet: Fleet, options: Options, bodies: list[bytes]) -> Result:
    async with fleet.client() as client, asyncio.timeout(options.timeout_s):
        meter = CpuMeter({child.name: child.pid for child in fleet.children})
        start_ms = time.time() * 1000
        started = time.perf_counter()
        ids = await post_all(client, bodies)
        accept_s = time.perf_counter() - started
        print(f"[{kind}] {len(ids)} operations accepted in {accept_s:.2f} s; draining")
        seen = await wait_drained(client, ids, fleet, options.size)
        cpu = meter.read()
    print(f"[{kind}] seen done at (s): " + " ".join(f"{t - started:.1f}" for t in seen))
    end_ms = await last_delivered_ms(kind, url, options.total)
    rss = {child.name: peak_rss_mb(child.pid) for child in fleet.children}
    seconds = (end_ms - start_ms) / 1000
    return Result(kind, options.total, seconds, accept_s, cpu, rss, load_average())


async def bench_database(kind: str, options: Options) -> Result:
    bodies = [send_body(index, options.size) for index in range(options.operations)]
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory(prefix="opencomms-drain-") as temp:
        workdir = Path(temp)
        async with (
            database(kind, workdir) as url,
            fleet(kind, url, workdir, credentials, options) as running,
        ):
            pids = ", ".join(f"{c.name} {c.pid}" for c in running.children)
            print(f"[{kind}] {running.base_url} ({pids}); {options.total:,} messages")
            return await drain(kind, url, running, options, bodies)


# Report.


def print_result(r: Result) -> None:
    print(
        f"\n[{r.database}] {r.messages:,} messages in {r.seconds:.2f} s: "
        f"{r.per_second:,.0f} messages/s end to end "
        f"({r.per_second / GOAL_PER_SECOND:.2f}x the {GOAL_PER_SECOND:,.0f}/s goal)"
    )
    print(f"  accept phase (all POSTs): {r.accept_s:.2f} s")
    for name, mb in r.rss_mb.items():
        verdict = "under" if mb < GOAL_RSS_MB else "OVER"
        print(f"  peak RSS {name}: {mb:.0f} MB ({verdict} the {GOAL_RSS_MB:.0f} MB goal)")
    cpu = ", ".join(f"{name} {s:.1f} s" for name, s in r.cpu.seconds.items())
    print(f"  CPU over {r.cpu.wall_s:.1f} s of wall time: {cpu}")
    print(f"  {r.load} at the end")


def parse_args() -> tuple[list[str], Options]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--operations", type=int, default=10, help="sends (POSTs)")
    parser.add_argument("--size", type=int, default=MAX_RECIPIENTS, help="recipients per send")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (PostgreSQL)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most")
    parser.add_argument("--batch-size", type=int, help="OPENCOMMS_BATCH_SIZE (default: unset)")
    args = parser.parse_args()
    if not (1 <= args.size <= MAX_RECIPIENTS and args.operations >= 1 and args.workers >= 1):
        parser.error(f"--operations and --workers must be >= 1, --size 1 to {MAX_RECIPIENTS}")
    if args.operations * args.size > NUMBERS:
        parser.error(f"at most {NUMBERS:,} messages (distinct +1415 numbers)")
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    options = Options(args.operations, args.size, args.workers, args.timeout, args.batch_size)
    return kinds, options


async def run(kinds: list[str], options: Options) -> list[Result]:
    results = []
    for kind in kinds:
        results.append(await bench_database(kind, options))
        print_result(results[-1])
    return results


def main() -> None:
    kinds, options = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        asyncio.run(run(kinds, options))
    except TimeoutError:
        sys.exit(f"benchmark failed: not drained within {options.timeout_s:g} s")
    except BenchError as error:
        sys.exit(f"benchmark failed: {error}")
    except (OSError, httpx.HTTPError, asyncpg.PostgresError, sqlite3.Error) as error:
        sys.exit(f"benchmark failed: {error!r}")


if __name__ == "__main__":
    main()
