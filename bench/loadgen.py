"""A lean HTTP/1.1 load generator: keep-alive connections replaying one request's bytes.

Run as its own process (bench/accept.py pins it to the core the server does not use), so the
load costs the server's core nothing. Each connection sends the request, reads the whole
answer (status line, headers, Content-Length body), and sends it again. It prints one JSON
object: requests done, answers by status, requests/s, latency percentiles in ms, and this
process's CPU seconds.

    python bench/loadgen.py --port 8080 --request-file req.bin --connections 16 --seconds 10
    python bench/loadgen.py ... --connections 1 --count 30      # sequential, fixed count

A request file holds the exact bytes to send (request line, headers, body).
"""

import argparse
import asyncio
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    first_error: str | None = None


async def read_answer(reader: asyncio.StreamReader) -> int:
    """Reads one HTTP/1.1 answer and returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length:
        await reader.readexactly(length)
    return status


async def connection(
    host: str, port: int, request: bytes, until: float, budget: list[int], tally: Tally
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until and budget[0] > 0:
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            status = await read_answer(reader)
            tally.latencies_ms.append((time.perf_counter() - start) * 1000)
            tally.statuses[status] += 1
    except (OSError, asyncio.IncompleteReadError) as error:
        tally.first_error = tally.first_error or repr(error)
    finally:
        writer.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def run(args: argparse.Namespace, request: bytes) -> dict[str, object]:
    tally = Tally()
    budget = [args.count if args.count else sys.maxsize]
    started = time.perf_counter()
    cpu_start = time.process_time()
    until = started + (args.seconds if args.seconds else 1e9)
    await asyncio.gather(
        *(
            connection(args.host, args.port, request, until, budget, tally)
            for _ in range(args.connections)
        )
    )
    wall = time.perf_counter() - started
    done = len(tally.latencies_ms)
    return {
        "requests": done,
        "statuses": {str(k): v for k, v in tally.statuses.items()},
        "per_second": done / wall if wall else 0.0,
        "wall_s": wall,
        "p50_ms": percentile(tally.latencies_ms, 0.5),
        "p99_ms": percentile(tally.latencies_ms, 0.99),
        "max_ms": max(tally.latencies_ms, default=math.nan),
        "cpu_s": time.process_time() - cpu_start,
        "error": tally.first_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--request-file", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=0.0, help="run this long")
    parser.add_argument("--count", type=int, default=0, help="or send this many requests")
    args = parser.parse_args()
    if not args.seconds and not args.count:
        parser.error("give --seconds or --count")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args, Path(args.request_file).read_bytes()))
    result["pid"] = os.getpid()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
