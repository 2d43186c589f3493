"""Sandbox inbox benchmark: how fast `GET /v1/Sandbox/Messages` answers over a full inbox.

The inbox is derived from attempt rows at read time (dispatch writes nothing for it), so what
it costs is paid by the reader: this measures that cost. One `opencomms serve` (API and worker,
OPENCOMMS_SANDBOX_DELAY=0) on a fresh database of each kind; `--operations` (2) sends of
`--size` (10,000) recipients (distinct +1415xxxxxxx numbers) are posted and delivered first.
Then, `--repeat` (30) times each, over HTTP with Basic auth, timed with perf_counter around
each request (one keep-alive connection, requests one after another):

- the first page (pageSize 50), unfiltered;
- `to=` one recipient (its one delivery);
- `operationId=` the second operation, first page;
- the 20th page, following `next` tokens (the last request is timed);
- `DELETE ?to=` one recipient, then the unfiltered first page again (with a clear in place).

Reported per database: the median and the 95th percentile in milliseconds of each. Run from
the repository root (PostgreSQL as for bench/drain.py):

    .venv/bin/python bench/sandbox_inbox.py --database sqlite --size 2000
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from common import BenchError, Credentials, api_client, database, load_average, server


def body(operation: int, size: int) -> dict[str, object]:
    start = 2_000_000 + operation * size
    return {
        "to": [{"address": f"+1415{start + i:07d}", "channel": "PHONE"} for i in range(size)],
        "content": {"text": "Your code is 1234"},
    }


async def fill(client: httpx.AsyncClient, operations: int, size: int) -> list[str]:
    ids = []
    for index in range(operations):
        response = await client.post("/v1/Messages", json=body(index, size))
        if response.status_code != 202:
            raise BenchError(f"send answered {response.status_code}: {response.text[:300]}")
        ids.append(response.json()["operationId"])
    deadline = time.monotonic() + 600
    for operation_id in ids:
        while True:
            got = (await client.get(f"/v1/Messages/Operations/{operation_id}")).json()
            if got["status"] == "COMPLETED":
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{operation_id} not completed in 600 s: {got}")
            await asyncio.sleep(0.5)
    return ids


async def timed(repeat: int, call: Callable[[], Awaitable[httpx.Response]]) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await call()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            raise BenchError(f"answered {response.status_code}: {response.text[:300]}")
    return samples


async def deep_page(client: httpx.AsyncClient, pages: int) -> httpx.Response:
    response = await client.get("/v1/Sandbox/Messages", params={"pageSize": "50"})
    for _ in range(pages - 1):
        token = response.json()["pagination"]["next"]
        response = await client.get(
            "/v1/Sandbox/Messages", params={"pageSize": "50", "pageToken": token}
        )
    return response


async def measure(kind: str, args: argparse.Namespace) -> dict[str, list[float]]:
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory(prefix="opencomms-bench-") as folder:
        workdir = Path(folder)
        async with (
            database(kind, workdir) as url,
            server(
                url, workdir, credentials, worker=True, env={"OPENCOMMS_SANDBOX_DELAY": "0"}
            ) as running,
            api_client(running.base_url, credentials, 1) as client,
        ):
            ids = await fill(client, args.operations, args.size)
            inbox = "/v1/Sandbox/Messages"
            one = f"+1415{2_000_000 + 7:07d}"
            results = {
                "first page": await timed(args.repeat, lambda: client.get(inbox)),
                "to=": await timed(args.repeat, lambda: client.get(inbox, params={"to": one})),
                "operationId=": await timed(
                    args.repeat, lambda: client.get(inbox, params={"operationId": ids[-1]})
                ),
                "20th page": await timed(max(args.repeat // 5, 1), lambda: deep_page(client, 20)),
            }
            results["DELETE ?to="] = await timed(
                1, lambda: client.delete(inbox, params={"to": one})
            )
            results["first page, cleared"] = await timed(args.repeat, lambda: client.get(inbox))
            return results


def report(kind: str, args: argparse.Namespace, results: dict[str, list[float]]) -> None:
    total = args.operations * args.size
    print(f"\n{kind}: {total:,} deliveries in the inbox ({load_average()})")
    for name, samples in results.items():
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(f"  {name:<22} median {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--operations", type=int, default=2)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        report(kind, args, await measure(kind, args))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
