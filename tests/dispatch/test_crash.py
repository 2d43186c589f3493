"""A worker process killed with SIGKILL in the middle of a batch loses nothing."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from opencomms.channels import SandboxChannel
from opencomms.clock import now_ms
from opencomms.store.db import Database
from opencomms.store.tables import attempts, events, messages
from tests.dispatch.helpers import (
    assert_operation_consistent,
    attempt_rows,
    body,
    dispatcher,
    eventually,
    message_rows,
    send,
)

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


def start_worker(db_url: str, **settings: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **{f"OPENCOMMS_{k.upper()}": v for k, v in settings.items()}}
    command = [sys.executable, "-m", "tests.dispatch.worker_process", db_url]
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def counts(db: Database) -> tuple[int, int]:
    """(messages DELIVERED, attempts in flight)."""
    async with db.read() as conn:
        delivered = select(func.count()).where(messages.c.status == "DELIVERED")
        in_flight = select(func.count()).where(attempts.c.status == "QUEUED")
        return (
            int((await conn.execute(delivered)).scalar_one()),
            int((await conn.execute(in_flight)).scalar_one()),
        )


async def last_attempt_status(db: Database, message_id: str) -> str | None:
    found = await attempt_rows(db, message_id)
    return str(found[-1]["status"]) if found else None


async def test_sigkill_mid_batch_loses_nothing_and_repeats_nothing_recorded(
    db: Database, db_url: str
) -> None:
    op = await send(db, body(*[f"+1415555{i:04d}" for i in range(60)]))
    # One lane, batches of 20 that take four seconds to send: the kill lands inside the
    # second batch, even on a loaded machine. (With two lanes both first batches finish
    # together and the kill could fall between batches.)
    doomed = start_worker(
        db_url,
        worker_id="doomed",
        batch_size="20",
        lease_seconds="2",
        sandbox_latency="0.2",
        send_concurrency="1",
        worker_lanes="1",
    )
    try:

        async def second_batch_in_flight() -> bool:
            delivered, in_flight = await counts(db)
            return delivered >= 20 and in_flight > 0

        await eventually(second_batch_in_flight, seconds=60)
        doomed.send_signal(signal.SIGKILL)
        assert doomed.wait(10) == -signal.SIGKILL
    finally:
        if doomed.poll() is None:
            doomed.kill()

    before = {r["id"]: r for r in await message_rows(db, op)}
    delivered_before = {i for i, r in before.items() if r["status"] == "DELIVERED"}
    leased = {i for i, r in before.items() if r["lease_owner"] == "doomed"}
    in_flight = {i for i in leased if await last_attempt_status(db, i) == "QUEUED"}
    assert delivered_before and in_flight

    survivor_channel = SandboxChannel()
    async with dispatcher(db, now_ms, sandbox=survivor_channel, worker_id="survivor") as survivor:

        async def all_delivered() -> bool:
            await survivor.run_once()  # picks the dead worker's messages up once its lease ends
            return (await counts(db))[0] == 60

        await eventually(all_delivered, seconds=30)

    resent = {d.message_id for d in survivor_channel.inbox.deliveries}
    assert resent == set(before) - delivered_before  # nothing recorded as sent went out again
    for message_id in in_flight:
        first, second = await attempt_rows(db, message_id)
        assert (first["status"], first["error_code"]) == ("FAILED", 30008)
        assert second["status"] == "DELIVERED"
    for message_id in delivered_before:
        assert [a["status"] for a in await attempt_rows(db, message_id)] == ["DELIVERED"]
    assert await assert_operation_consistent(db, op) == "COMPLETED"
    # The outbox wrote its events with the changes: each message's path exactly once, the
    # batch the kill interrupted included (its start committed, its record never did).
    async with db.read() as conn:
        query = select(events.c.subject, events.c.type).where(events.c.subject.in_(list(before)))
        stored = sorted((await conn.execute(query.order_by(events.c.id))).all())
    path = [f"com.twilio.comms-api.message.{s}" for s in ("delivered", "queued", "sent")]
    assert stored == sorted((m, kind) for m in before for kind in path)
