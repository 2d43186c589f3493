"""While a route is down (its SMTP relay unreachable), its messages wait: no attempt used,
nothing failed, the route reported down; once the relay is up they are delivered, each in
one attempt. A route down past the validity period fails its messages with 30036."""

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from opencomms.channels.smtp import SmtpChannel, SmtpRouteConfig
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.dispatch.worker import serve
from opencomms.domain import errors
from opencomms.store.db import Database
from opencomms.store.tables import route_states
from tests.acceptance.server import free_port
from tests.channels.smtp.conftest import smtp_server
from tests.dispatch.helpers import attempt_rows, message_rows
from tests.dispatch.test_emails import send_emails
from tests.dispatch.test_route_states import readyz


def worker(db: Database, port: int, **config: Any) -> Dispatcher:
    channel = SmtpChannel(SmtpRouteConfig(host="127.0.0.1", port=port, timeout=2))
    settings = WorkerConfig(worker_id="w-route", poll_interval=0.1, route_retry_max=1, **config)
    # The default EMAIL sender's route is "sandbox": here the SMTP channel plays it.
    return Dispatcher(db, {"sandbox": channel}, settings)


async def reported(db: Database) -> list[tuple[str, bool, str]]:
    async with db.read() as conn:
        rows = await conn.execute(select(route_states).where(route_states.c.worker_id == "w-route"))
        return [(r.route, r.up, r.reason) for r in rows]


async def between_probes(db: Database, operation_id: str) -> list[dict[str, Any]]:
    """The messages at a moment no probe is in flight (a probe starts an attempt and takes
    it back when the route refuses): every message waits, no attempt row is left."""
    deadline = time.monotonic() + 5
    while True:
        rows = await message_rows(db, operation_id)
        if not [a for r in rows for a in await attempt_rows(db, str(r["id"]))]:
            return rows
        assert time.monotonic() < deadline, "attempts stay in flight while the route is down"
        await asyncio.sleep(0.02)


async def settled(db: Database, operation_id: str, seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        rows = await message_rows(db, operation_id)
        if all(r["status"] in ("DELIVERED", "FAILED") for r in rows):
            return rows
        assert time.monotonic() < deadline, [r["status"] for r in rows]
        await asyncio.sleep(0.1)


async def test_messages_wait_out_a_relay_outage_without_using_attempts(
    db: Database, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there yet
    operation_id = await send_emails(db, *(f"user{i}@example.com" for i in range(5)))
    stop = asyncio.Event()
    async with worker(db, port) as dispatcher:
        running = asyncio.create_task(serve(dispatcher, [], stop))
        try:
            await asyncio.sleep(4)  # several probes of the route, every one refused
            rows = await between_probes(db, operation_id)
            assert {r["status"] for r in rows} == {"QUEUED"}
            assert {r["attempt_count"] for r in rows} == {0}
            assert await reported(db) == [("sandbox", False, "connection refused")]
            routes: Any = (await readyz(db))["routes"]
            [route] = routes
            assert (route["state"], route["reason"]) == ("down", "connection refused")
            with smtp_server(tmp_path / "spool.jsonl", "--port", str(port)) as server:
                rows = await settled(db, operation_id, 30)
                await asyncio.sleep(1.5)  # the next report
                assert await reported(db) == [("sandbox", True, "")]
                received = server.received()
        finally:
            stop.set()
            await running
    assert {r["status"] for r in rows} == {"DELIVERED"}
    assert {r["attempt_count"] for r in rows} == {1}  # the refused probes used none
    assert [len(await attempt_rows(db, str(r["id"]))) for r in rows] == [1] * 5
    assert sorted(m["to"][0] for m in received) == [f"user{i}@example.com" for i in range(5)]
    assert await reported(db) == []  # a stopped worker's report is removed


async def test_a_route_down_past_the_validity_period_fails_with_30036(db: Database) -> None:
    started = now_ms()
    operation_id = await send_emails(db, "late@example.com")
    stop = asyncio.Event()
    async with worker(db, free_port(), validity_seconds=3) as dispatcher:
        running = asyncio.create_task(serve(dispatcher, [], stop))
        try:
            [row] = await settled(db, operation_id, 20)
        finally:
            stop.set()
            await running
    assert (row["status"], row["error_code"]) == ("FAILED", errors.VALIDITY_EXPIRED)
    assert row["attempt_count"] == 0
    assert row["updated_at"] - started < 6000  # failed when its validity ended, not later
