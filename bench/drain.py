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

With `--sink on`, a local webhook receiver (bench/events.py's, in its own process) is made a
sink through the Event Streams API (create, Test, Validate) and subscribed to every event type
before the clock starts (`batch_events`: JSON arrays, as a sink taking this volume would be);
the drain is the same, and afterwards the benchmark waits for every
event (3 per message, 2 per operation) to reach the receiver and reports when the last did.
`--sink compare` runs without a sink, then with one, and prints the ratios of the two: wall
time, and CPU seconds per 1,000 messages (all processes; the CPU ratio is what a loaded
machine can still measure).

    .venv/bin/python bench/drain.py --sink compare          # the outbox's cost, both databases

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
from contextlib import AsyncExitStack, asynccontextmanager, closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
    log_tail,
    peak_rss_mb,
    server,
    workers,
)
from events import receiver as sink_receiver  # bench/events.py's counting receiver
from opencomms.events import types as event_types

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
    sink: bool = False

    @property
    def total(self) -> int:
        return self.operations * self.size

    def worker_env(self) -> dict[str, str]:
        env = {"OPENCOMMS_SANDBOX_DELAY": "0", "OPENCOMMS_EVENTS_ALLOWED_NETWORKS": "127.0.0.0/8"}
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
    sink: bool = False
    events_at_drain: int = 0  # received by the sink when the last message was seen done
    events_s: float | None = None  # from the first POST until the sink had every event

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_ms_per_1000(self) -> float:
        return sum(self.cpu.seconds.values()) * 1000 / self.messages * 1000


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


async def drain(
    kind: str, url: str, fleet: Fleet, options: Options, bodies: list[bytes], hook: str | None
) -> Result:
    async with fleet.client() as client, asyncio.timeout(options.timeout_s):
        meter = CpuMeter({child.name: child.pid for child in fleet.children})
        start_ms = time.time() * 1000
        started = time.perf_counter()
        ids = await post_all(client, bodies)
        accept_s = time.perf_counter() - started
        print(f"[{kind}] {len(ids)} operations accepted in {accept_s:.2f} s; draining")
        seen = await wait_drained(client, ids, fleet, options.size)
        cpu = meter.read()
        at_drain = (await received(hook))["events"] if hook else 0
        events_s = None
        if hook:
            await wait_events(hook, fleet, 3 * options.total + 2 * options.operations)
            events_s = time.perf_counter() - started
    print(f"[{kind}] seen done at (s): " + " ".join(f"{t - started:.1f}" for t in seen))
    end_ms = await last_delivered_ms(kind, url, options.total)
    rss = {child.name: peak_rss_mb(child.pid) for child in fleet.children}
    seconds = (end_ms - start_ms) / 1000
    return Result(
        kind,
        options.total,
        seconds,
        accept_s,
        cpu,
        rss,
        load_average(),
        hook is not None,
        at_drain,
        events_s,
    )


# The sink (--sink): bench/events.py's receiver, made a sink through the Event Streams API.


async def received(hook: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as plain:
        counts: dict[str, Any] = (await plain.get(hook)).json()
        return counts


async def subscribe_everything(client: httpx.AsyncClient, hook: str) -> None:
    """Creates a webhook sink for `hook`, validates it with its test event, and subscribes
    it to every event type, as the Twilio SDK would."""
    destination = {"destination": hook + "/hook", "method": "POST", "batch_events": True}
    configuration = orjson.dumps(destination).decode()
    form = {"Description": "bench", "SinkType": "webhook", "SinkConfiguration": configuration}
    created = await client.post("/v1/Sinks", data=form)
    if created.status_code != 201:
        raise BenchError(f"create sink: {created.status_code}: {created.text[:500]}")
    sid = created.json()["sid"]
    await client.post(f"/v1/Sinks/{sid}/Test")
    for _ in range(400):
        test_id = (await received(hook))["test_id"]
        if test_id:
            break
        await asyncio.sleep(0.05)
    else:
        raise BenchError("the sink's test event never arrived")
    valid = await client.post(f"/v1/Sinks/{sid}/Validate", data={"TestId": test_id})
    if valid.status_code != 201:
        raise BenchError(f"validate sink: {valid.status_code}: {valid.text[:500]}")
    kinds = [orjson.dumps({"type": t, "schema_version": 1}).decode() for t in event_types.ALL_TYPES]
    form = {"Description": "everything", "SinkSid": sid, "Types": kinds}
    subscribed = await client.post("/v1/Subscriptions", data=form)
    if subscribed.status_code != 201:
        raise BenchError(f"subscribe: {subscribed.status_code}: {subscribed.text[:500]}")


async def wait_events(hook: str, fleet: Fleet, expected: int) -> None:
    while (await received(hook))["events"] < expected:
        check_alive(fleet.children)
        await asyncio.sleep(POLL_S)


def show_logs_on_timeout(fleet: Fleet) -> None:
    """On the way out of a run that timed out, what each process said last (its log goes
    with the temporary directory)."""
    if sys.exc_info()[0] is TimeoutError:
        for child in fleet.children:
            print(f"--- {child.name} ({child.log.name}):\n{log_tail(child.log)}")


async def bench_database(kind: str, options: Options) -> Result:
    bodies = [send_body(index, options.size) for index in range(options.operations)]
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory(prefix="opencomms-drain-") as temp:
        workdir = Path(temp)
        async with (
            database(kind, workdir) as url,
            fleet(kind, url, workdir, credentials, options) as running,
            AsyncExitStack() as stack,
        ):
            hook = None
            if options.sink:
                hook = await stack.enter_async_context(sink_receiver())
                async with running.client() as client:
                    await subscribe_everything(client, hook)
            stack.callback(show_logs_on_timeout, running)
            pids = ", ".join(f"{c.name} {c.pid}" for c in running.children)
            with_sink = " (one sink subscribed to every type)" if hook else ""
            print(f"[{kind}] {running.base_url} ({pids}); {options.total:,} messages{with_sink}")
            return await drain(kind, url, running, options, bodies, hook)


# Report.


def print_result(r: Result) -> None:
    label = f"{r.database}, sink" if r.sink else r.database
    print(
        f"\n[{label}] {r.messages:,} messages in {r.seconds:.2f} s: "
        f"{r.per_second:,.0f} messages/s end to end "
        f"({r.per_second / GOAL_PER_SECOND:.2f}x the {GOAL_PER_SECOND:,.0f}/s goal)"
    )
    print(f"  accept phase (all POSTs): {r.accept_s:.2f} s")
    for name, mb in r.rss_mb.items():
        verdict = "under" if mb < GOAL_RSS_MB else "OVER"
        print(f"  peak RSS {name}: {mb:.0f} MB ({verdict} the {GOAL_RSS_MB:.0f} MB goal)")
    cpu = ", ".join(f"{name} {s:.1f} s" for name, s in r.cpu.seconds.items())
    print(f"  CPU over {r.cpu.wall_s:.1f} s of wall time: {cpu}")
    print(f"  CPU per 1,000 messages (all processes): {r.cpu_ms_per_1000:.0f} ms")
    if r.sink:
        print(f"  events at the sink when drained: {r.events_at_drain:,}")
        print(f"  every event at the sink after {r.events_s:.2f} s")
    print(f"  {r.load} at the end")


def print_comparison(without: Result, with_sink: Result) -> None:
    """The outbox's cost: the goal is a drain with a sink within 20% of one without."""
    wall = with_sink.seconds / without.seconds
    cpu = with_sink.cpu_ms_per_1000 / without.cpu_ms_per_1000
    verdict = "within" if wall <= 1.2 else "OVER"
    print(
        f"\n[{without.database}] with one sink / without: drain time {wall:.2f}x ({verdict} the"
        f" 1.20x goal), CPU per message {cpu:.2f}x"
        f" ({with_sink.cpu_ms_per_1000:.0f} vs {without.cpu_ms_per_1000:.0f} ms per 1,000)"
    )


def parse_args() -> tuple[list[str], Options]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--operations", type=int, default=10, help="sends (POSTs)")
    parser.add_argument("--size", type=int, default=MAX_RECIPIENTS, help="recipients per send")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (PostgreSQL)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most")
    parser.add_argument("--batch-size", type=int, help="OPENCOMMS_BATCH_SIZE (default: unset)")
    parser.add_argument(
        "--sink",
        choices=("off", "on", "compare"),
        default="off",
        help="a local receiver subscribed to every event type; compare: without, then with",
    )
    args = parser.parse_args()
    if not (1 <= args.size <= MAX_RECIPIENTS and args.operations >= 1 and args.workers >= 1):
        parser.error(f"--operations and --workers must be >= 1, --size 1 to {MAX_RECIPIENTS}")
    if args.operations * args.size > NUMBERS:
        parser.error(f"at most {NUMBERS:,} messages (distinct +1415 numbers)")
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    options = Options(args.operations, args.size, args.workers, args.timeout, args.batch_size)
    modes = {"off": [False], "on": [True], "compare": [False, True]}[args.sink]
    return kinds, [replace(options, sink=mode) for mode in modes]


async def run(kinds: list[str], runs: list[Options]) -> list[Result]:
    results = []
    for kind in kinds:
        mine = []
        for options in runs:
            mine.append(await bench_database(kind, options))
            print_result(mine[-1])
        if len(mine) == 2:
            print_comparison(*mine)
        results += mine
    return results


def main() -> None:
    kinds, runs = parse_args()
    options = runs[0]
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        asyncio.run(run(kinds, runs))
    except TimeoutError:
        sys.exit(f"benchmark failed: not drained within {options.timeout_s:g} s")
    except BenchError as error:
        sys.exit(f"benchmark failed: {error}")
    except (OSError, httpx.HTTPError, asyncpg.PostgresError, sqlite3.Error) as error:
        sys.exit(f"benchmark failed: {error!r}")


if __name__ == "__main__":
    main()
