"""A message whose hand-off kills its worker every time is isolated and failed (30412)
after `max_stalled_claims` (3) crashes; the messages that shared its batches are delivered.
Real worker processes, killed by the message itself each time."""

import asyncio
import os
import subprocess
import sys
import time

import pytest

from opencomms.domain import errors
from opencomms.store.db import Database
from tests.dispatch.crashing_worker import CRASH_EXIT
from tests.dispatch.helpers import attempt_rows, body, message_rows, send
from tests.dispatch.test_crash import ROOT

pytestmark = pytest.mark.slow


def start(db_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        # A dead worker's claims come back soon; a live one keeps its own on a loaded machine.
        "OPENCOMMS_LEASE_SECONDS": "4",
        "OPENCOMMS_POLL_INTERVAL": "0.1",
        "OPENCOMMS_BATCH_SIZE": "20",
    }
    command = [sys.executable, "-m", "tests.dispatch.crashing_worker", db_url]
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def test_a_message_that_kills_its_worker_is_failed_alone(db: Database, db_url: str) -> None:
    request = body(*[f"+1415555{i:04d}" for i in range(40)], text="{{ kind }}")
    for index, recipient in enumerate(request["to"]):
        recipient["variables"] = {"kind": "POISON" if index == 7 else f"hello {index}"}
    op = await send(db, request)
    crashes = 0
    deadline = time.monotonic() + 120
    worker = start(db_url)
    try:
        while True:
            rows = await message_rows(db, op)
            if all(r["status"] in ("DELIVERED", "FAILED") for r in rows):
                break
            assert time.monotonic() < deadline, f"not settled after {crashes} crashes"
            if worker.poll() is not None:
                assert worker.returncode == CRASH_EXIT
                crashes += 1
                assert crashes <= 5, "the poison message was never isolated"
                worker = start(db_url)
            await asyncio.sleep(0.1)
    finally:
        if worker.poll() is None:
            worker.terminate()
        await asyncio.to_thread(worker.wait, 20)
    rows = await message_rows(db, op)
    poison = rows[7]
    assert poison["status"] == "FAILED"
    assert poison["error_code"] == errors.POISON_MESSAGE
    assert "stopped 3 times" in poison["error_message"]
    assert crashes == 3
    others = rows[:7] + rows[8:]
    assert {r["status"] for r in others} == {"DELIVERED"}
    # Its hand-offs that died with the worker are marked outcome unknown, none left in flight.
    assert {a["status"] for a in await attempt_rows(db, poison["id"])} == {"FAILED"}
