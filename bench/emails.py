"""Emails per second through one SMTP route into an SMTP sink running as its own process.

Named emails.py, not email.py: the benchmarks run with bench/ first on sys.path, where a
file named email.py would hide the standard library's `email` package from every bench.

    .venv/bin/python bench/emails.py [--emails 20000] [--connections 4]
        [--sink aiosmtpd|lean] [--phases ceiling,aiosmtplib,channel,dispatch,postgres]

The figures, against the same sink, in one run:
  ceiling     a bare client: our SMTP session with a prebuilt message, no MIME, no channel,
              over four times as many sessions (so round trips do not bound it): what the
              sink itself can take. Measured first and again last: a machine whose load
              changes between them shows it
  aiosmtplib  the same prebuilt message through aiosmtplib (no PIPELINING: one round trip
              per command), for the choice of client
  channel     SmtpChannel.send: MIME written per email, pooled pipelined sessions
  dispatch    end to end through the dispatch worker (two lanes, as `opencomms worker`
              runs them) on SQLite, in this process: emails stored as POST /Emails stores
              them, claimed, rendered, handed to the route, recorded DELIVERED
  postgres    end to end on PostgreSQL with two `opencomms worker` processes sharing the
              route's config (each with its own pool of `--connections` sessions); the rate
              is over the span from the first hand-off to the last email DELIVERED, read
              from the database, so process start-up is not in it
Each line gives emails/s, its ratio to the ceiling, and the CPU each side spent an email:
`client` (this process, or the two workers), `sink` (the sink process). Wall-clock rates
are only meaningful on a quiet machine; the CPU figures hold under load, and `cpu-bound`
(1 / the larger of the two, as if each side had a core of its own) is the rate they allow.
The load average is printed first.

The sinks (each its own process, advertising PIPELINING): `aiosmtpd` is
tests/channels/smtp/server.py --sink (aiosmtpd with a handler that only counts); `lean` is
bench/smtp_sink.py (a few lines of asyncio), whose ceiling shows what aiosmtpd itself costs.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import psutil  # type: ignore[import-untyped]
from sqlalchemy import func, select

import common
from opencomms.channels import OutboundMessage
from opencomms.channels.smtp import SmtpChannel, SmtpRouteConfig
from opencomms.channels.smtp.client import Endpoint, open_session
from opencomms.cli.app import run_loop
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.dispatch.worker import serve
from opencomms.domain.channels import ChannelType
from opencomms.domain.emails import (
    MAX_RECIPIENTS,
    SendEmailsCommand,
    prepare_emails,
    recipient,
    stored_content,
)
from opencomms.domain.senders import SenderRecord, sender_id
from opencomms.store import accounts, emails, migrate, senders, sends
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database, open_database
from opencomms.store.tables import attempts, messages

ROOT = Path(__file__).parents[1]
SENDER = "bench@example.com"
CONTENT = {
    "subject": "Your order {{ n }} has shipped",
    "html": "<html><body><p>Hi Ada,</p><p>Your order has <b>shipped</b>.</p></body></html>",
    "text": "Hi Ada,\nYour order has shipped.\n",
    "from": {"address": SENDER, "name": "Bench Shop"},
}


SINKS = {
    "aiosmtpd": [sys.executable, "-m", "tests.channels.smtp.server", "--sink"],
    "lean": [sys.executable, "bench/smtp_sink.py"],
}


@dataclass(frozen=True)
class Sink:
    port: int
    pid: int


@contextmanager
def sink(kind: str) -> Iterator[Sink]:
    process = subprocess.Popen(SINKS[kind], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the sink did not start: {line!r}")
        yield Sink(int(line.split()[1]), process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def cpu_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


class Meter:
    """CPU seconds of the client side (this process, or given worker processes) and of the
    sink over one phase."""

    def __init__(self, sink_pid: int, clients: list[int] | None = None) -> None:
        self.sink = [psutil.Process(sink_pid)]
        self.clients = [psutil.Process(pid) for pid in clients or [os.getpid()]]
        self.start = (cpu_of(self.clients), cpu_of(self.sink))

    def read(self) -> tuple[float, float]:
        return cpu_of(self.clients) - self.start[0], cpu_of(self.sink) - self.start[1]


def prebuilt(port: int) -> bytes:
    channel = SmtpChannel(SmtpRouteConfig(host="127.0.0.1", port=port))
    return channel.build(
        OutboundMessage("comms_email_bench", 1, "EMAIL", SENDER, "x@example.net", CONTENT)
    )[1]


@dataclass(frozen=True)
class Run:
    seconds: float
    client_cpu: float
    sink_cpu: float


class Timed:
    """Wall time and both sides' CPU from its start to `done()`."""

    def __init__(self, target: Sink, clients: list[int] | None = None) -> None:
        self.meter = Meter(target.pid, clients)
        self.started = time.perf_counter()

    def done(self, seconds: float | None = None) -> Run:
        client, sink_cpu = self.meter.read()
        return Run(
            time.perf_counter() - self.started if seconds is None else seconds, client, sink_cpu
        )


async def spread(total: int, lanes: int, one: Callable[[int], Awaitable[None]]) -> None:
    """Runs `one(i)` for every i over `lanes` concurrent loops."""
    counter = iter(range(total))

    async def lane() -> None:
        for index in counter:
            await one(index)

    await asyncio.gather(*(lane() for _ in range(lanes)))


async def ceiling(target: Sink, total: int, connections: int, data: bytes) -> Run:
    endpoint = Endpoint("127.0.0.1", target.port, timeout=30.0, local_hostname="bench.local")
    sessions = [await open_session(endpoint) for _ in range(connections)]
    counter = iter(range(total))

    async def lane(index: int) -> None:
        session = sessions[index]
        for n in counter:
            reply = await session.transaction(SENDER, f"user{n}@example.net", data)
            assert reply.code == 250, reply

    timed = Timed(target)
    await asyncio.gather(*(lane(i) for i in range(connections)))
    run = timed.done()
    for session in sessions:
        await session.quit()
    return run


async def with_aiosmtplib(target: Sink, total: int, connections: int, data: bytes) -> Run:
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=target.port, start_tls=False)
        for _ in range(connections)
    ]
    for client in clients:
        await client.connect()
    counter = iter(range(total))

    async def lane(client: aiosmtplib.SMTP) -> None:
        for n in counter:
            await client.sendmail(SENDER, [f"user{n}@example.net"], data)

    timed = Timed(target)
    await asyncio.gather(*(lane(c) for c in clients))
    run = timed.done()
    for client in clients:
        await client.quit()
    return run


async def through_channel(target: Sink, total: int, connections: int) -> Run:
    config = SmtpRouteConfig(host="127.0.0.1", port=target.port, pool_size=connections)
    channel = SmtpChannel(config)
    await channel.open(lambda receipt: None)

    async def one(n: int) -> None:
        content = {**CONTENT, "subject": f"Your order {n} has shipped"}
        message = OutboundMessage(
            f"comms_email_{n:026d}", 1, "EMAIL", SENDER, f"user{n}@example.net", content
        )
        await channel.send(message)

    timed = Timed(target)
    try:
        # More senders than sessions: a sender builds its next email while another waits.
        await spread(total, connections * 4, one)
        return timed.done()
    finally:
        await channel.aclose()


ACCOUNT = "AC" + "0" * 32
ROUTE = "relay"


async def prepare_database(db: Database, total: int) -> None:
    """The bench account, its EMAIL sender (its domain, on the SMTP route) and `total`
    emails stored as POST /Emails stores them, 10,000 to an operation."""
    async with db.write() as conn:
        await accounts.create_account(conn, SecretBox("bench"), sid=ACCOUNT)
        record = SenderRecord(
            sender_id(ACCOUNT, "EMAIL", "example.com"),
            ACCOUNT,
            ChannelType.EMAIL,
            "example.com",
            ROUTE,
        )
        await senders.sync_declared(conn, [record], now_ms())
    for first in range(0, total, MAX_RECIPIENTS):
        await store_emails(db, range(first, min(first + MAX_RECIPIENTS, total)))


async def store_emails(db: Database, numbers: range) -> None:
    """One operation of these recipients, written as POST /Emails writes it."""
    content = {key: CONTENT[key] for key in ("subject", "html", "text")}
    to = [{"address": f"user{n}@example.net", "variables": {"n": str(n)}} for n in numbers]
    sender = CONTENT["from"]
    command = SendEmailsCommand([recipient(t) for t in to], content, SENDER, sender["name"])
    async with db.read() as conn:
        available = await sends.account_senders(conn, ACCOUNT, None)
    prepared = prepare_emails(command, available, datetime.now(UTC))
    async with db.write() as conn:
        await emails.insert_emails(
            conn,
            account_sid=ACCOUNT,
            operation_id=f"comms_operation_{numbers.start:026d}",
            prepared=prepared,
            content=stored_content(command),
            sender=sender,
            now=now_ms(),
        )


async def _count(db: Database, *statuses: str) -> int:
    async with db.read() as conn:
        query = select(func.count()).where(messages.c.status.in_(statuses))
        return int((await conn.execute(query)).scalar_one())


async def wait_final(db: Database, total: int, every: float = 0.1) -> None:
    """Until every email is final (within a bound the caller sets with asyncio.timeout).
    Polled sparingly: the count is CPU of the measured side."""
    while await _count(db, "DELIVERED", "FAILED", "UNDELIVERED") < total:  # noqa: ASYNC110
        await asyncio.sleep(every)


async def through_dispatch(target: Sink, total: int, connections: int) -> Run | None:
    """Dispatching `total` stored emails on SQLite in this process; None when some were
    not delivered."""
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(f"sqlite:///{folder}/bench.db")
        await migrate.upgrade(db)
        await prepare_database(db, total)
        channel = SmtpChannel(
            SmtpRouteConfig(host="127.0.0.1", port=target.port, pool_size=connections)
        )
        config = WorkerConfig(worker_id="bench", send_concurrency=connections * 4)
        stop = asyncio.Event()
        try:
            async with Dispatcher(db, {ROUTE: channel}, config) as dispatcher:
                timed = Timed(target)
                lanes = asyncio.create_task(serve(dispatcher, [], stop))
                async with asyncio.timeout(max(120.0, total / 50)):
                    await wait_final(db, total)
                run = timed.done()
                stop.set()
                await lanes
            delivered = await _count(db, "DELIVERED")
        finally:
            await db.dispose()
    return run if delivered == total else None


def worker_config(folder: Path, port: int, connections: int) -> Path:
    path = folder / "opencomms.toml"
    # The sender too: a worker makes the config's senders current when it starts.
    path.write_text(
        "[[routes]]\n"
        f'name = "{ROUTE}"\ntype = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
        f"pool_size = {connections}\n\n"
        "[[senders]]\n"
        f'channel = "EMAIL"\naddress = "example.com"\nroute = "{ROUTE}"\n'
        f'account = "{ACCOUNT}"\n'
    )
    return path


async def span_seconds(db: Database) -> float:
    """From the first hand-off to the last email recorded DELIVERED, in the database."""
    async with db.read() as conn:
        first = (await conn.execute(select(func.min(attempts.c.attempted_at)))).scalar_one()
        last = (await conn.execute(select(func.max(messages.c.updated_at)))).scalar_one()
    return max(int(last) - int(first), 1) / 1000


# A worker's start (imports, config, connecting) can take long on a loaded machine.
common.READY_TIMEOUT_S = 120.0


async def through_postgres(
    target: Sink, total: int, connections: int, workers: int = 2
) -> Run | None:
    """Two `opencomms worker` processes on PostgreSQL, the emails stored while they wait."""
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        env = {"OPENCOMMS_CONFIG": str(worker_config(workdir, target.port, connections))}
        async with common.postgres_database(workdir) as url:
            db = open_database(url)
            try:
                async with common.workers(url, workdir, workers, env) as children:
                    timed = Timed(target, [c.pid for c in children])
                    await prepare_database(db, total)
                    async with asyncio.timeout(max(120.0, total / 50)):
                        await wait_final(db, total, every=0.5)
                    run = timed.done(await span_seconds(db))
                delivered = await _count(db, "DELIVERED")
            finally:
                await db.dispose()
    return run if delivered == total else None


def report(name: str, total: int, run: Run | None, top: float | None) -> float:
    if run is None:
        print(f"{name:<11} FAILED: not every email was delivered")
        return 0.0
    rate = total / run.seconds
    ratio = f"{rate / top:5.2f}x" if top else "     "
    client_us, sink_us = run.client_cpu / total * 1e6, run.sink_cpu / total * 1e6
    bound = 1e6 / max(client_us, sink_us, 1e-9)
    print(
        f"{name:<11} {total:>7} emails {run.seconds:7.2f} s {rate:7.0f}/s {ratio}"
        f"  client {client_us:6.0f} us  sink {sink_us:6.0f} us  cpu-bound {bound:6.0f}/s",
        flush=True,
    )
    return rate


PHASES = ("ceiling", "aiosmtplib", "channel", "dispatch", "postgres")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sink", choices=sorted(SINKS), default="aiosmtpd")
    parser.add_argument("--phases", default=",".join(PHASES), help="a comma-separated subset")
    args = parser.parse_args()
    total, connections = args.emails, args.connections
    phases = set(args.phases.split(","))
    print(common.load_average())
    with sink(args.sink) as target:
        data = prebuilt(target.port)
        print(
            f"{args.sink} sink on 127.0.0.1:{target.port}, {connections} connections,"
            f" {len(data)} bytes an email; ratios are to the ceiling, CPU is per email"
        )
        top = None
        wide = connections * 4  # the ceiling's sessions: enough to keep the sink busy
        if "ceiling" in phases:
            top = report("ceiling", total, await ceiling(target, total, wide, data), None)
        if "aiosmtplib" in phases:
            run = await with_aiosmtplib(target, total, connections, data)
            report("aiosmtplib", total, run, top)
        if "channel" in phases:
            report("channel", total, await through_channel(target, total, connections), top)
        if "dispatch" in phases:
            report("dispatch", total, await through_dispatch(target, total, connections), top)
        if "postgres" in phases:
            run = await through_postgres(target, total, connections)
            report("postgres x2", total, run, top)
        if "ceiling" in phases:
            again = report("ceiling", total, await ceiling(target, total, wide, data), top)
            if top and abs(again - top) / top > 0.2:
                print("the ceiling moved over 20% during the run: the machine is not quiet")
        print(common.load_average())


if __name__ == "__main__":
    # The event loop `opencomms worker` runs on (cli/app.py run_loop): uvloop.
    run_loop(main())
