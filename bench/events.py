"""Event delivery benchmark: message events/s from the outbox to a local webhook receiver.

For each database and each mode (unbatched: one event per POST; batched: JSON arrays of up
to `--batch-max` (100) events), the benchmark:

1. makes a fresh database (SQLite file in a temporary directory, or a new PostgreSQL
   database `opencomms_bench_<hex>`, migrated and dropped afterwards), an account and one
   active webhook sink subscribed to every type, pointing at a receiver process on 127.0.0.1
   (uvicorn + httptools, answering 200 and counting the events it gets);
2. writes `--events` (100,000) message events through `events.outbox.emit`, in transactions
   of 1,000 transitions as the dispatcher would, and reports that rate (the outbox's cost);
3. starts the clock and runs the delivery loop (`events.delivery.Deliverer`, the code the
   worker runs, in this process) until the sink owes nothing, then asks the receiver how many
   events it counted (it must be all of them).

Reported: events written/s, events delivered/s, requests made, and the ratio to the goal of
5,000 events/s batched. Run from the repository root:

    .venv/bin/python bench/events.py                          # both databases, both modes
    .venv/bin/python bench/events.py --database sqlite --events 10000
"""

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from common import database, free_port, load_average

sys.path.insert(0, str(Path(__file__).parents[1] / "src"))

from opencomms.clock import now_ms
from opencomms.domain.transitions import MessageTransition
from opencomms.events import outbox, sinks, types
from opencomms.events.delivery import Deliverer, DeliveryConfig
from opencomms.store import accounts, migrate
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database, open_database

GOAL_BATCHED = 5_000.0
SECRET = "bench-events-key"
CHUNK = 1_000
STATUSES = ("QUEUED", "SENT", "DELIVERED")
TEST_EVENT = types.TEST_EVENT.encode()
CPU: dict[str, float] = {"write": 0.0, "deliver": 0.0}  # of the run in progress


@dataclass(frozen=True)
class Result:
    database: str
    mode: str
    events: int
    written_per_s: float
    seconds: float
    requests: int
    write_cpu_s: float = 0.0  # this process's CPU time writing the events (outbox.emit)
    deliver_cpu_s: float = 0.0  # and delivering them (the database's own CPU not counted)

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


class Counter:
    """The receiver: counts events and requests; GET answers the counts."""

    def __init__(self) -> None:
        self.events = 0
        self.requests = 0
        self.test_id: str | None = None  # the last test event's id (a sink's Validate needs it)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST" and TEST_EVENT in body:
            sent = orjson.loads(body)
            self.test_id = (sent[0] if isinstance(sent, list) else sent)["id"]
            answer = b"ok"
        elif scope["method"] == "POST":
            self.requests += 1
            self.events += body.count(b'"specversion"')
            answer = b"ok"
        else:
            counts = {"events": self.events, "requests": self.requests, "test_id": self.test_id}
            answer = orjson.dumps(counts)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def serve_receiver(port: int) -> None:
    import uvicorn

    uvicorn.run(Counter(), host="127.0.0.1", port=port, log_level="warning", http="httptools")


@asynccontextmanager
async def receiver() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-receiver", str(port)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    await client.get(url)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


def transitions(account_sid: str, count: int) -> list[MessageTransition]:
    return [
        MessageTransition(
            message_id=f"comms_message_{i // 3:08d}",
            operation_id="comms_operation_bench",
            account_sid=account_sid,
            from_status=None if i % 3 == 0 else STATUSES[i % 3 - 1],
            to_status=STATUSES[i % 3],
            attempt=1,
            downstream_id=f"SM{i // 3:08d}",
            channel="SMS",
            sender={"id": "sender_bench", "address": "+15005550006", "channel": "SMS"},
            recipient={"address": f"+1415{i // 3:07d}", "channel": "PHONE"},
            tags={"bench": "events"},
        )
        for i in range(count)
    ]


async def prepare(db: Database, hook: str, batch: bool, count: int) -> float:
    """Account, sink and `count` events; returns events written per second."""
    box = SecretBox(SECRET)
    async with db.write() as conn:
        account = await accounts.create_account(conn, box)
        sink, _ = await sinks.create_sink(
            conn,
            box,
            account_sid=account.sid,
            description="bench",
            sink_type="webhook",
            configuration={"destination": hook + "/hook", "method": "POST", "batch_events": batch},
            now=now_ms(),
            status=sinks.ACTIVE,
        )
        await sinks.create_subscription(
            conn,
            account_sid=account.sid,
            sink_sid=sink.sid,
            description="everything",
            subscribed=[(t, 1) for t in types.ALL_TYPES],
            now=now_ms(),
        )
    batch_of = transitions(account.sid, count)
    started = time.perf_counter()
    cpu = time.process_time()
    for i in range(0, count, CHUNK):
        async with db.write() as conn:
            await outbox.emit(conn, batch_of[i : i + CHUNK], now_ms())
    CPU["write"] = time.process_time() - cpu
    return count / (time.perf_counter() - started)


async def deliver(db: Database, batch_max: int) -> float:
    config = DeliveryConfig(
        secret_key=SECRET, allowed_networks=("127.0.0.0/8",), batch_max=batch_max
    )
    worker = Deliverer(db, config)
    started = time.perf_counter()
    cpu = time.process_time()
    while await worker.run_once():
        await worker.drain()
    CPU["deliver"] = time.process_time() - cpu
    return time.perf_counter() - started


async def bench_one(kind: str, mode: str, count: int, batch_max: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="opencomms-bench-events-") as tmp:
        async with database(kind, Path(tmp)) as url, receiver() as hook:
            db = open_database(url)
            try:
                if db.is_sqlite:
                    await migrate.upgrade(db)
                written = await prepare(db, hook, mode == "batched", count)
                seconds = await deliver(db, batch_max)
            finally:
                await db.dispose()
            async with httpx.AsyncClient() as client:
                counts = (await client.get(hook)).json()
    if counts["events"] != count:
        raise SystemExit(f"the receiver counted {counts['events']} of {count} events")
    return Result(
        kind, mode, count, written, seconds, counts["requests"], CPU["write"], CPU["deliver"]
    )


def print_result(r: Result) -> None:
    goal = f"  ({r.per_second / GOAL_BATCHED:.2f}x the goal)" if r.mode == "batched" else ""
    print(
        f"{r.database:>10} {r.mode:>9}: {r.events} events in {r.seconds:.2f} s = "
        f"{r.per_second:,.0f} events/s over {r.requests} requests{goal}; "
        f"outbox writes {r.written_per_s:,.0f} events/s",
        flush=True,
    )
    print(
        f"{'':>21}CPU per event (this process): writing {r.write_cpu_s / r.events * 1e6:.1f} us,"
        f" delivering {r.deliver_cpu_s / r.events * 1e6:.1f} us; {load_average()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--mode", choices=["unbatched", "batched"], action="append")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-max", type=int, default=100)
    parser.add_argument("--serve-receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return
    for kind in args.database or ["sqlite", "postgresql"]:
        for mode in args.mode or ["batched", "unbatched"]:
            print_result(asyncio.run(bench_one(kind, mode, args.events, args.batch_max)))


if __name__ == "__main__":
    main()
