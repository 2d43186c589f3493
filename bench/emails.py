"""Emails per second through one SMTP route into an aiosmtpd sink running as its own process.

Named emails.py, not email.py: the benchmarks run with bench/ first on sys.path, where a
file named email.py would hide the standard library's `email` package from every bench.

    .venv/bin/python bench/emails.py [--emails 20000] [--connections 4]

Four figures from one run, against the same sink:
  ceiling     a bare client: our SMTP session with a prebuilt message, no MIME, no channel;
              what the sink itself can take
  aiosmtplib  the same prebuilt message through aiosmtplib (no PIPELINING: one round trip
              per command), for the choice of client
  channel     SmtpChannel.send: MIME written per email, pooled pipelined sessions
  dispatch    end to end through the dispatch worker (two lanes, as `opencomms worker`
              runs them) on SQLite: emails stored as POST /Emails stores them, claimed,
              rendered, handed to the route, recorded DELIVERED
Each is printed with its ratio to the ceiling. The sink is tests/channels/smtp/server.py
--sink (it advertises PIPELINING; aiosmtpd handles pipelined commands but does not say so).
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select

from opencomms.channels import OutboundMessage
from opencomms.channels.smtp import SmtpChannel, SmtpRouteConfig
from opencomms.channels.smtp.client import Endpoint, open_session
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.dispatch.worker import serve
from opencomms.domain.channels import ChannelType
from opencomms.domain.emails import SendEmailsCommand, prepare_emails, recipient, stored_content
from opencomms.domain.senders import SenderRecord, sender_id
from opencomms.store import emails, migrate, senders, sends
from opencomms.store.db import Database, open_database
from opencomms.store.tables import messages

ROOT = Path(__file__).parents[1]
SENDER = "bench@example.com"
CONTENT = {
    "subject": "Your order {{ n }} has shipped",
    "html": "<html><body><p>Hi Ada,</p><p>Your order has <b>shipped</b>.</p></body></html>",
    "text": "Hi Ada,\nYour order has shipped.\n",
    "from": {"address": SENDER, "name": "Bench Shop"},
}


@contextmanager
def sink() -> Iterator[int]:
    command = [sys.executable, "-m", "tests.channels.smtp.server", "--sink"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the sink did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(timeout=10)


def prebuilt(port: int) -> bytes:
    channel = SmtpChannel(SmtpRouteConfig(host="127.0.0.1", port=port))
    return channel.build(
        OutboundMessage("comms_email_bench", 1, "EMAIL", SENDER, "x@example.net", CONTENT)
    )[1]


async def spread(total: int, lanes: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Runs `one(i)` for every i over `lanes` concurrent loops; returns the seconds taken."""
    counter = iter(range(total))

    async def lane() -> None:
        for index in counter:
            await one(index)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return time.perf_counter() - start


async def ceiling(port: int, total: int, connections: int, data: bytes) -> float:
    endpoint = Endpoint("127.0.0.1", port, timeout=30.0, local_hostname="bench.local")
    sessions = [await open_session(endpoint) for _ in range(connections)]
    counter = iter(range(total))

    async def lane(index: int) -> None:
        session = sessions[index]
        for n in counter:
            reply = await session.transaction(SENDER, f"user{n}@example.net", data)
            assert reply.code == 250, reply

    start = time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(connections)))
    elapsed = time.perf_counter() - start
    for session in sessions:
        await session.quit()
    return elapsed


async def with_aiosmtplib(port: int, total: int, connections: int, data: bytes) -> float:
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        for _ in range(connections)
    ]
    for client in clients:
        await client.connect()
    counter = iter(range(total))

    async def lane(client: aiosmtplib.SMTP) -> None:
        for n in counter:
            await client.sendmail(SENDER, [f"user{n}@example.net"], data)

    start = time.perf_counter()
    await asyncio.gather(*(lane(c) for c in clients))
    elapsed = time.perf_counter() - start
    for client in clients:
        await client.quit()
    return elapsed


async def through_channel(port: int, total: int, connections: int) -> float:
    channel = SmtpChannel(SmtpRouteConfig(host="127.0.0.1", port=port, pool_size=connections))
    await channel.open(lambda receipt: None)

    async def one(n: int) -> None:
        content = {**CONTENT, "subject": f"Your order {n} has shipped"}
        message = OutboundMessage(
            f"comms_email_{n:026d}", 1, "EMAIL", SENDER, f"user{n}@example.net", content
        )
        await channel.send(message)

    try:
        # More senders than sessions: a sender builds its next email while another waits.
        return await spread(total, connections * 4, one)
    finally:
        await channel.aclose()


ACCOUNT = "AC" + "0" * 32
ROUTE = "relay"


async def declare_sender(db: Database) -> None:
    """The bench account's EMAIL sender: its domain, on the SMTP route."""
    record = SenderRecord(
        sender_id(ACCOUNT, "EMAIL", "example.com"), ACCOUNT, ChannelType.EMAIL, "example.com", ROUTE
    )
    async with db.write() as conn:
        await senders.sync_declared(conn, [record], now_ms())


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


async def through_dispatch(port: int, total: int, connections: int) -> float | None:
    """Seconds to dispatch `total` stored emails; None when some were not delivered."""
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(f"sqlite:///{folder}/bench.db")
        await migrate.upgrade(db)
        await declare_sender(db)
        for first in range(0, total, 10_000):
            await store_emails(db, range(first, min(first + 10_000, total)))
        channel = SmtpChannel(SmtpRouteConfig(host="127.0.0.1", port=port, pool_size=connections))
        config = WorkerConfig(worker_id="bench", send_concurrency=connections * 4)
        stop = asyncio.Event()
        try:
            async with Dispatcher(db, {ROUTE: channel}, config) as dispatcher:
                start = time.perf_counter()
                lanes = asyncio.create_task(serve(dispatcher, [], stop))
                while await _count(db, "DELIVERED", "FAILED", "UNDELIVERED") < total:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                elapsed = time.perf_counter() - start
                stop.set()
                await lanes
            delivered = await _count(db, "DELIVERED")
        finally:
            await db.dispose()
    return elapsed if delivered == total else None


def report(name: str, total: int, seconds: float, top: float | None) -> float:
    rate = total / seconds
    ratio = f"{rate / top:6.2f} of the ceiling" if top else ""
    print(f"{name:<11} {total:>7} emails in {seconds:6.2f} s  {rate:8.0f} emails/s  {ratio}")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    total, connections = args.emails, args.connections
    with sink() as port:
        data = prebuilt(port)
        print(f"sink 127.0.0.1:{port}, {connections} connections, {len(data)} bytes an email")
        top = report("ceiling", total, await ceiling(port, total, connections, data), None)
        report("aiosmtplib", total, await with_aiosmtplib(port, total, connections, data), top)
        report("channel", total, await through_channel(port, total, connections), top)
        seconds = await through_dispatch(port, total, connections)
        if seconds is None:
            print("dispatch    FAILED: not every email was delivered")
        else:
            report("dispatch", total, seconds, top)


if __name__ == "__main__":
    asyncio.run(main())
