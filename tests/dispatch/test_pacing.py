"""A sender's `mps` holds across worker processes, never holds back another sender, and a
backlog that would outlast the validity period is refused at accept time."""

import asyncio
import bisect
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from opencomms.api.app import create_app
from opencomms.channels import SandboxChannel
from opencomms.config import Settings
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.dispatch.worker import serve
from opencomms.domain.pacing import Schedule
from opencomms.domain.senders import sender_id
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from opencomms.store.tables import attempts, messages, senders
from tests.conftest import SECRET, new_account
from tests.dispatch.helpers import ACCOUNT, body, ensure_account, eventually, send

ROOT = Path(__file__).parents[2]
SMS = {"address": "+15005550006", "channel": "SMS"}
WHATSAPP = {"address": "+15005550006", "channel": "WHATSAPP"}


def numbers(count: int, prefix: str = "+1415555") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


async def set_mps(db: Database, account: str, channel: str, address: str, mps: float) -> None:
    async with db.write() as conn:
        await ensure_account(conn, account)
        await conn.execute(
            update(senders)
            .where(senders.c.id == sender_id(account, channel, address))
            .values(mps=mps)
        )


async def hand_off_times(db: Database, channel: str) -> list[int]:
    async with db.read() as conn:
        query = (
            select(attempts.c.attempted_at)
            .where(attempts.c.channel == channel)
            .order_by(attempts.c.attempted_at)
        )
        return [int(t) for t in (await conn.execute(query)).scalars()]


async def delivered(db: Database, channel: str) -> int:
    async with db.read() as conn:
        query = select(func.count()).where(
            messages.c.status == "DELIVERED", messages.c.channel == channel
        )
        return int((await conn.execute(query)).scalar_one())


def assert_paced(times: list[int], mps: int) -> None:
    """Within 2% of the rate over the run, and never more than `mps` in any second."""
    span = (times[-1] - times[0]) / 1000
    rate = (len(times) - 1) / span
    assert abs(rate - mps) / mps <= 0.02, f"{rate:.2f}/s for a limit of {mps}/s"
    busiest = max(bisect.bisect_left(times, t + 1000) - i for i, t in enumerate(times))
    assert busiest <= mps, f"{busiest} hand-offs in one second"


def test_schedule_spaces_slots_and_keeps_reservations() -> None:
    schedule = Schedule(mps=4, next_slot=0)
    slots = [schedule.place(None, 1000, 600) for _ in range(4)]
    assert [d.slot for d in slots] == [1000, 1250, 1500, 1750]
    assert [d.keep for d in slots] == [True, True, True, False]
    assert schedule.place(1750, 1200, 600).keep  # its reservation, now near
    assert schedule.next_slot == 2000  # reused, not taken again
    missed = schedule.place(1750, 1800, 600)  # too late: a fresh slot instead
    assert (missed.slot, schedule.next_slot) == (2000, 2250)


async def test_one_process_paces_a_sender(db: Database) -> None:
    await set_mps(db, ACCOUNT, "SMS", "+15005550006", 50)
    await send(db, body(*numbers(150), **{"from": SMS}))
    sandbox = SandboxChannel()
    config = WorkerConfig(worker_id="pace", poll_interval=0.1, batch_size=40)
    stop = asyncio.Event()
    dispatcher = Dispatcher(db, {"sandbox": sandbox}, config)
    async with dispatcher:
        task = asyncio.create_task(serve(dispatcher, [], stop))
        try:
            await eventually(lambda: _all_delivered(db, "SMS", 150), 30)
        finally:
            stop.set()
            await task
    times = await hand_off_times(db, "SMS")
    assert_paced(times, 50)
    # The hand-offs themselves (the sandbox's clock) never come before their slot.
    by_message = {d.message_id: d.at for d in sandbox.inbox.deliveries}
    async with db.read() as conn:
        rows = (await conn.execute(select(attempts.c.message_id, attempts.c.attempted_at))).all()
    assert all(by_message[m] >= at for m, at in rows)


async def _all_delivered(db: Database, channel: str, count: int) -> bool:
    return await delivered(db, channel) >= count


def start_worker(db_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENCOMMS_POLL_INTERVAL": "0.1", "OPENCOMMS_BATCH_SIZE": "50"}
    command = [sys.executable, "-m", "tests.dispatch.worker_process", db_url]
    return subprocess.Popen(command, env=env, cwd=ROOT)


@pytest.mark.slow
async def test_two_worker_processes_share_one_senders_rate(
    pg_db: Database, queue_pg_url: str
) -> None:
    await set_mps(pg_db, ACCOUNT, "SMS", "+15005550006", 50)
    await send(pg_db, body(*numbers(300), **{"from": SMS}))
    workers = [start_worker(queue_pg_url) for _ in range(2)]
    try:
        await eventually(lambda: _all_delivered(pg_db, "SMS", 300), 40)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=15)
    assert_paced(await hand_off_times(pg_db, "SMS"), 50)


@pytest.mark.slow
async def test_a_throttled_sender_never_holds_back_another(db: Database) -> None:
    await set_mps(db, ACCOUNT, "SMS", "+15005550006", 1)
    await send(db, body(*numbers(200), **{"from": SMS}))  # 200 s of backlog at 1 mps
    fast = [{"address": n, "channel": "WHATSAPP"} for n in numbers(2000, "+1415666")]
    await send(db, {"to": fast, "content": {"text": "Hi"}, "from": WHATSAPP})
    config = WorkerConfig(worker_id="pace", poll_interval=0.1)
    stop = asyncio.Event()
    dispatcher = Dispatcher(db, {"sandbox": SandboxChannel()}, config)
    started = time.monotonic()
    async with dispatcher:
        task = asyncio.create_task(serve(dispatcher, [], stop))
        try:
            await eventually(lambda: _all_delivered(db, "WHATSAPP", 2000), 60)
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            await task
    slow = await hand_off_times(db, "SMS")
    # The slow one kept to its 1 per second meanwhile (hand-offs a second apart, or more).
    assert slow
    assert all(b - a >= 1000 for a, b in itertools.pairwise(slow))
    # The fast sender drained at the worker's own speed: 2,000 sandbox messages take a
    # second or two alone; allow a loaded machine ten.
    assert elapsed < 10, f"the unlimited sender took {elapsed:.1f}s beside a throttled one"


async def test_a_backlog_past_the_validity_period_is_refused_at_accept(
    db: Database, box: SecretBox
) -> None:
    account: NewCredential = await new_account(db, box)
    await set_mps(db, account.sid, "SMS", "+15005550006", 1)
    settings = Settings(secret_key=SECRET, worker=WorkerConfig(validity_seconds=100))
    transport = httpx.ASGITransport(app=create_app(db, settings))
    auth = (account.sid, account.secret)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:

        async def post(count: int, sender: dict[str, str]) -> httpx.Response:
            return await client.post("/v1/Messages", json=body(*numbers(count), **{"from": sender}))

        assert (await post(60, SMS)).status_code == 202  # 60 s of backlog: fine
        refused = await post(50, SMS)  # 110 s: past the 100 s validity
        assert refused.status_code == 400
        [error] = refused.json()["errors"]
        assert (error["code"], error["context"]) == (21611, "$.from")
        assert "60 messages waiting" in error["message"]
        assert (await post(40, SMS)).status_code == 202  # exactly 100 s still fits
        # Another, unpaced sender of the account is not affected.
        whatsapp = [{"address": n, "channel": "WHATSAPP"} for n in numbers(500)]
        response = await client.post(
            "/v1/Messages", json={"to": whatsapp, "content": {"text": "x"}, "from": WHATSAPP}
        )
        assert response.status_code == 202
