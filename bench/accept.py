"""Accept-path benchmark: how fast a real `opencomms serve` says 202 to `POST /v1/Messages`.

It starts the server as a separate process (`opencomms serve --no-worker`, so nothing else
competes for the CPU), on a free port of 127.0.0.1, with its SQLite file and secret file in a
temporary directory, or on a fresh PostgreSQL database `opencomms_bench_<hex>` that it
migrates first and drops at the end. The server is stopped with SIGTERM.

Two measurements per database:

1. Latency of one 10,000-recipient send (distinct US numbers on PHONE, three Liquid variables
   per recipient, five request-level tags): 3 warm-up requests, then `--runs` sequential
   requests; p50, p99 and max in ms. p99 is nearest-rank, so with 30 runs it is the slowest
   run. The goal is p99 under 250 ms on a 2-core machine.
2. Throughput of 1-recipient sends from 16 concurrent clients (one httpx.AsyncClient,
   keep-alive) after 100 warm-up requests: a fixed total (`--requests`, default 3,000);
   requests/s and p50/p99 latency.

Each answer must be a 202, or the benchmark stops. Every body is serialized once and the same
bytes are posted again, so the client spends its CPU on HTTP only; the CPU seconds the server
and this client used are printed too, since both share the same two cores.

Run it from the repository root (PostgreSQL at postgresql://postgres@127.0.0.1:5432, trust
auth, or set OPENCOMMS_BENCH_PG_URL to another admin URL):

    .venv/bin/python bench/accept.py                       # both databases, 30 runs
    .venv/bin/python bench/accept.py --database sqlite --runs 10 --requests 1000

The server logs warnings only, to server.log in its temporary directory; its last lines are
shown if it fails to start. The process and database plumbing is in bench/common.py.
"""

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from common import (
    JSON_HEADERS,
    BenchError,
    CpuMeter,
    CpuUse,
    Credentials,
    api_client,
    database,
    server,
)

GOAL_P99_MS = 250.0
RECIPIENTS = 10_000
WARMUP_RUNS = 3
CONCURRENCY = 16
SMALL_TOTAL = 3_000
SMALL_WARMUP = 100
AREA_CODES = ("206", "415")
TEXT = "Hi {{ first }} {{ last }}, your code is {{ code }}"
TAGS = {
    "campaign": "spring-sale",
    "team": "growth",
    "region": "us-west",
    "priority": "high",
    "batch": "b-0001",
}


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu: CpuUse


@dataclass(frozen=True)
class Throughput:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    cpu: CpuUse


@dataclass(frozen=True)
class Result:
    database: str
    big: Latency
    small: Throughput


# Request bodies: built and serialized once, posted as the same bytes every time.


def recipient(index: int) -> dict[str, Any]:
    area = AREA_CODES[index % len(AREA_CODES)]
    return {
        "address": f"+1{area}555{index:04d}",
        "channel": "PHONE",
        "variables": {"first": f"First{index}", "last": f"Last{index}", "code": f"{index:06d}"},
    }


def send_body(recipients: int) -> bytes:
    body = {
        "to": [recipient(i) for i in range(recipients)],
        "content": {"text": TEXT},
        "tags": TAGS,
    }
    return orjson.dumps(body)


# Percentiles.


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# Measurements.


async def timed_post(client: httpx.AsyncClient, body: bytes) -> float:
    """Milliseconds one POST /v1/Messages took; anything but a 202 stops the benchmark."""
    start = time.perf_counter()
    response = await client.post("/v1/Messages", content=body, headers=JSON_HEADERS)
    elapsed_ms = (time.perf_counter() - start) * 1000
    if response.status_code != 202:
        raise BenchError(f"expected 202, got {response.status_code}: {response.text[:500]}")
    return elapsed_ms


async def measure_big(client: httpx.AsyncClient, server_pid: int, runs: int) -> Latency:
    body = send_body(RECIPIENTS)
    for _ in range(WARMUP_RUNS):
        await timed_post(client, body)
    meter = CpuMeter({"server": server_pid})
    times = [await timed_post(client, body) for _ in range(runs)]
    return Latency(percentile(times, 0.5), percentile(times, 0.99), max(times), meter.read())


async def post_worker(
    client: httpx.AsyncClient, body: bytes, tickets: Iterator[int], times: list[float]
) -> None:
    for _ in tickets:
        times.append(await timed_post(client, body))


async def post_concurrently(client: httpx.AsyncClient, body: bytes, total: int) -> list[float]:
    tickets = iter(range(total))  # shared: the workers take requests until none are left
    times: list[float] = []
    async with asyncio.TaskGroup() as group:
        for _ in range(CONCURRENCY):
            group.create_task(post_worker(client, body, tickets, times))
    return times


async def measure_small(client: httpx.AsyncClient, server_pid: int, total: int) -> Throughput:
    body = send_body(1)
    await post_concurrently(client, body, SMALL_WARMUP)
    meter = CpuMeter({"server": server_pid})
    times = await post_concurrently(client, body, total)
    cpu = meter.read()
    return Throughput(
        total, total / cpu.wall_s, percentile(times, 0.5), percentile(times, 0.99), cpu
    )


async def bench_database(kind: str, runs: int, total: int) -> Result:
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory(prefix="opencomms-bench-") as temp:
        workdir = Path(temp)
        async with (
            database(kind, workdir) as url,
            server(url, workdir, credentials, worker=False) as running,
            api_client(running.base_url, credentials, CONCURRENCY) as client,
        ):
            base_url, pid = running.base_url, running.pid
            print(f"[{kind}] server on {base_url} (pid {pid}); {runs} runs of {RECIPIENTS:,}")
            big = await measure_big(client, pid, runs)
            print(
                f"[{kind}] {RECIPIENTS:,} recipients: p50 {big.p50_ms:.1f} ms, "
                f"p99 {big.p99_ms:.1f} ms, max {big.max_ms:.1f} ms"
            )
            small = await measure_small(client, pid, total)
            print(f"[{kind}] 1 recipient x {CONCURRENCY} clients: {small.per_second:.0f} req/s")
    return Result(kind, big, small)


# Report.


def cpu_note(cpu: CpuUse, requests: int) -> str:
    server_s, client_s = cpu.seconds["server"], cpu.seconds["client"]
    return (
        f"server {server_s / requests * 1000:.2f} ms CPU/req "
        f"({server_s / cpu.wall_s:.0%} of a core), "
        f"client {client_s / requests * 1000:.2f} ms CPU/req "
        f"({client_s / cpu.wall_s:.0%} of a core)"
    )


def print_summary(results: list[Result], runs: int) -> None:
    header = (
        f"{'database':<11}{'10k p50':>10}{'10k p99':>10}{'10k max':>10}{'p99/goal':>10}"
        f"{'1-rcpt req/s':>14}{'p50':>9}{'p99':>9}"
    )
    print(
        f"\nSummary (10k: {runs} runs after {WARMUP_RUNS} warm-ups; "
        f"1-recipient: {CONCURRENCY} concurrent clients; times in ms)"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.database:<11}{r.big.p50_ms:>10.1f}{r.big.p99_ms:>10.1f}{r.big.max_ms:>10.1f}"
            f"{r.big.p99_ms / GOAL_P99_MS:>9.2f}x{r.small.per_second:>14.0f}"
            f"{r.small.p50_ms:>9.1f}{r.small.p99_ms:>9.1f}"
        )
    print(
        f"\nGoal: p99 < {GOAL_P99_MS:.0f} ms for {RECIPIENTS:,} recipients "
        "(p99/goal < 1.00x meets it)."
    )
    for r in results:
        print(f"  {r.database}: 10k sends: {cpu_note(r.big.cpu, runs)}")
        print(f"  {r.database}: 1-recipient: {cpu_note(r.small.cpu, r.small.requests)}")


def print_client_cost() -> None:
    start = time.perf_counter()
    body = send_body(RECIPIENTS)
    built_ms = (time.perf_counter() - start) * 1000
    print(
        f"Client: the {RECIPIENTS:,}-recipient body ({len(body) / 1024:.0f} KiB) takes "
        f"{built_ms:.1f} ms to build; it is built once and the bytes are reused."
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=30, help="timed 10k-recipient sends")
    parser.add_argument("--requests", type=int, default=SMALL_TOTAL, help="1-recipient sends")
    args = parser.parse_args()
    if args.runs < 1 or args.requests < CONCURRENCY:
        parser.error(f"--runs must be >= 1 and --requests >= {CONCURRENCY}")
    return args


async def run(kinds: list[str], runs: int, total: int) -> list[Result]:
    return [await bench_database(kind, runs, total) for kind in kinds]


def main() -> None:
    args = parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print_client_cost()
    try:
        results = asyncio.run(run(kinds, args.runs, args.requests))
    except BenchError as error:
        sys.exit(f"benchmark failed: {error}")
    except (OSError, asyncpg.PostgresError) as error:
        sys.exit(f"benchmark failed: {error!r}")
    print_summary(results, args.runs)


if __name__ == "__main__":
    main()
