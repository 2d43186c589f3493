"""Pacing benchmark: does a sender's `mps` hold across worker processes, and does a throttled
sender leave the others alone?

On a fresh PostgreSQL database (as bench/drain.py: postgresql://postgres@127.0.0.1:5432 with
trust auth, or OPENCOMMS_BENCH_PG_URL), one `opencomms serve --no-worker` and `--workers` (2)
`opencomms worker` processes run with a config file declaring, for the bench account:

- a paced SMS sender at `--mps` (50) messages per second;
- a throttled SMS sender at 1 message per second;
- an unlimited WhatsApp sender.

Phase 1: `--mps` x (`--seconds` + 10) messages are posted through the paced sender, so its
backlog outlasts the window. Once `--seconds` (60) have passed since its first hand-off, the
hand-off times (attempts.attempted_at) inside that window give the achieved rate, its
deviation from the limit, and the most hand-offs seen in any one-second window.

Phase 2: 1,000 messages through the throttled sender, then `--fast` (10,000) through the
unlimited one; reported: the unlimited sender's rate from its POST to its last DELIVERED
(`GET /v1/Messages/Operations`), and the throttled one's meanwhile.

    .venv/bin/python bench/pacing.py                 # 60 s window
    .venv/bin/python bench/pacing.py --seconds 10    # shorter
"""

import argparse
import asyncio
import bisect
import tempfile
import time
from pathlib import Path

import asyncpg
import orjson

from common import (
    JSON_HEADERS,
    BenchError,
    Credentials,
    api_client,
    load_average,
    postgres_database,
    server,
    workers,
)

PACED = "+15550000001"
THROTTLED = "+15550000002"
FAST = "+15550000003"
MAX_RECIPIENTS = 10_000


def config_file(workdir: Path, account: str, mps: int) -> Path:
    path = workdir / "opencomms.toml"
    senders = [("SMS", PACED, mps), ("SMS", THROTTLED, 1), ("WHATSAPP", FAST, 0)]
    entries = "".join(
        f'[[senders]]\nchannel = "{channel}"\naddress = "{address}"\nroute = "sandbox"\n'
        f'mps = {rate}\naccount = "{account}"\n\n'
        for channel, address, rate in senders
    )
    path.write_text('[[routes]]\nname = "sandbox"\ntype = "sandbox"\n\n' + entries)
    return path


def body(sender: str, channel: str, count: int, offset: int) -> bytes:
    kind = "WHATSAPP" if channel == "WHATSAPP" else "PHONE"
    to = [{"address": f"+1415{offset + i:07d}", "channel": kind} for i in range(count)]
    return orjson.dumps(
        {"from": {"address": sender, "channel": channel}, "to": to, "content": {"text": "Hi"}}
    )


async def post(client: object, sender: str, channel: str, total: int, offset: int) -> list[str]:
    ids = []
    sent = 0
    while sent < total:
        count = min(MAX_RECIPIENTS, total - sent)
        response = await client.post(  # type: ignore[attr-defined]
            "/v1/Messages",
            content=body(sender, channel, count, offset + sent),
            headers=JSON_HEADERS,
        )
        if response.status_code != 202:
            raise BenchError(f"expected 202, got {response.status_code}: {response.text[:300]}")
        ids.append(response.json()["operationId"])
        sent += count
    return ids


async def hand_offs(url: str, address: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT attempted_at FROM attempts WHERE sender::jsonb->>'address' = $1"
            " ORDER BY attempted_at",
            address,
        )
    finally:
        await conn.close()
    return [int(r[0]) for r in rows]


def busiest_second(times: list[int]) -> int:
    return max((bisect.bisect_left(times, t + 1000) - i for i, t in enumerate(times)), default=0)


async def phase_paced(client: object, url: str, mps: int, seconds: float) -> None:
    await post(client, PACED, "SMS", int(mps * (seconds + 10)), 0)
    first: list[int] = []
    while not first:
        first = (await hand_offs(url, PACED))[:1]
        await asyncio.sleep(0.2)
    start = first[0]
    await asyncio.sleep(max(start / 1000 + seconds + 1 - time.time(), 0))
    times = [t for t in await hand_offs(url, PACED) if t < start + seconds * 1000]
    rate = len(times) / seconds
    print(
        f"paced sender: {len(times)} hand-offs in {seconds:g} s = {rate:.2f}/s for a limit of"
        f" {mps}/s (deviation {100 * (rate - mps) / mps:+.2f}%);"
        f" busiest one-second window: {busiest_second(times)}"
    )


async def operation_done(client: object, operation_id: str) -> bool:
    response = await client.get(f"/v1/Messages/Operations/{operation_id}")  # type: ignore[attr-defined]
    return bool(response.json()["status"] == "COMPLETED")


async def phase_beside(client: object, url: str, fast: int) -> None:
    await post(client, THROTTLED, "SMS", 1000, 1_000_000)
    started = time.time()
    ids = await post(client, FAST, "WHATSAPP", fast, 2_000_000)
    for operation_id in ids:
        while not await operation_done(client, operation_id):  # noqa: ASYNC110 - over HTTP
            await asyncio.sleep(0.1)
    ended = max(await hand_offs(url, FAST)) / 1000
    throttled = [t for t in await hand_offs(url, THROTTLED) if t <= ended * 1000]
    window = ended - started
    print(
        f"unlimited sender beside a 1/s one: {fast} messages in {window:.2f} s ="
        f" {fast / window:,.0f}/s (POST to last hand-off); throttled meanwhile:"
        f" {len(throttled)} hand-offs, busiest second {busiest_second(throttled)}"
    )


async def run(options: argparse.Namespace) -> None:
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory(prefix="opencomms-pacing-") as tmp:
        workdir = Path(tmp)
        env = {"OPENCOMMS_CONFIG": str(config_file(workdir, credentials.account_sid, options.mps))}
        async with postgres_database(workdir) as url:  # noqa: SIM117 - each needs the last
            async with server(url, workdir, credentials, worker=False, env=env) as running:
                async with (
                    workers(url, workdir, options.workers, env),
                    api_client(running.base_url, credentials, 4) as client,
                ):
                    await phase_paced(client, url, options.mps, options.seconds)
                    await phase_beside(client, url, options.fast)
    print(load_average())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--mps", type=int, default=50, help="the paced sender's limit")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--fast", type=int, default=10_000, help="messages of the unlimited one")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
