"""What each per-request safeguard costs on the accept path: server CPU per 1-recipient POST.

Starts `opencomms serve --no-worker` once per variant (SQLite in a temporary directory, or a
fresh PostgreSQL database) and posts 1-recipient sends from 16 concurrent connections:

- `quiet`: logging at warning (no request lines), no rate limits, no Idempotency-Key;
- `request-log`: one log line per request (the default, info);
- `rate-limit`: request and recipient limits on (high enough never to refuse);
- `idem-new`: every request with a new Idempotency-Key (a claim: one more write);
- `idem-replay`: every request with the same key (a replay of the first answer).

Each figure is server CPU milliseconds per request (psutil) and requests/s; both share the
machine with this client, so compare the variants with one another, not across machines.

    .venv/bin/python bench/hardening.py --database sqlite --requests 2000
"""

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from common import BenchError, CpuMeter, Credentials, api_client, database, server

BODY = orjson.dumps(
    {"to": [{"address": "+14155550100", "channel": "PHONE"}], "content": {"text": "Hi"}}
)
CONCURRENCY = 16
VARIANTS = {
    "quiet": ({"OPENCOMMS_LOG_LEVEL": "warning"}, None),
    "request-log": ({"OPENCOMMS_LOG_LEVEL": "info"}, None),
    "rate-limit": (
        {
            "OPENCOMMS_LOG_LEVEL": "warning",
            "OPENCOMMS_RATE_REQUESTS_PER_SECOND": "1000000",
            "OPENCOMMS_RATE_RECIPIENTS_PER_MINUTE": "100000000",
        },
        None,
    ),
    "idem-new": ({"OPENCOMMS_LOG_LEVEL": "warning"}, "new"),
    "idem-replay": ({"OPENCOMMS_LOG_LEVEL": "warning"}, "same"),
}


async def post_all(client: httpx.AsyncClient, total: int, keys: str | None) -> None:
    tickets = iter(range(total))
    connections = min(CONCURRENCY, total)

    async def one_connection() -> None:
        for _ in tickets:
            headers = {"content-type": "application/json"}
            if keys is not None:
                headers["idempotency-key"] = "same" if keys == "same" else uuid.uuid4().hex
            response = await client.post("/v1/Messages", content=BODY, headers=headers)
            if response.status_code != 202:
                raise BenchError(f"{response.status_code}: {response.text[:300]}")

    await asyncio.gather(*(one_connection() for _ in range(connections)))


async def measure(kind: str, name: str, total: int) -> tuple[float, float]:
    env, keys = VARIANTS[name]
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory(prefix="opencomms-bench-") as temp:
        workdir = Path(temp)
        async with (
            database(kind, workdir) as url,
            server(url, workdir, credentials, worker=False, env=env) as running,
            api_client(running.base_url, credentials, CONCURRENCY) as client,
        ):
            # Warm-up; the replay variant's first answer is recorded before any replay.
            await post_all(client, 1, keys)
            await post_all(client, 100, keys)
            meter = CpuMeter({"server": running.pid})
            started = time.perf_counter()
            await post_all(client, total, keys)
            wall = time.perf_counter() - started
            cpu = meter.read().seconds["server"]
    return cpu / total * 1000, total / wall


async def run(kind: str, total: int) -> None:
    print(f"[{kind}] {total} 1-recipient POSTs per variant, {CONCURRENCY} connections")
    base = None
    for name in VARIANTS:
        ms, rate = await measure(kind, name, total)
        base = base or ms
        print(f"  {name:<12} {ms:6.3f} ms CPU/request ({ms - base:+.3f})  {rate:7.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    try:
        for kind in kinds:
            asyncio.run(run(kind, args.requests))
    except BenchError as error:
        sys.exit(f"benchmark failed: {error}")


if __name__ == "__main__":
    main()
