"""A delivery worker killed with SIGKILL mid-round loses no event."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from opencomms.store.tables import events
from tests.dispatch.helpers import FakeClock
from tests.events.helpers import active_sink, deliverer, emit, lifecycle, settle
from tests.events.receiver import Answer, receiver

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


def start_delivery(db_url: str, **settings: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **{f"OPENCOMMS_{k.upper()}": v for k, v in settings.items()}}
    command = [sys.executable, "-m", "tests.events.delivery_process", db_url]
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def test_sigkill_mid_round_loses_no_event(
    db: Database, db_url: str, box: SecretBox, account: NewCredential
) -> None:
    async with receiver() as hook:
        hook.script = lambda _r: Answer(delay=0.2)
        await active_sink(db, box, account.sid, hook.url)
        for i in range(10):
            await emit(db, lifecycle(account.sid, f"m{i}"))
        # Rounds of five, one request at a time: the kill lands inside the second round.
        doomed = start_delivery(
            db_url,
            worker_id="doomed",
            events_allowed_networks="127.0.0.0/8",
            events_round_size="5",
            events_concurrency="1",
            events_lease_seconds="2",
            events_attempt_timeout="0.5",
            events_poll_interval="0.05",
        )
        try:
            for _ in range(600):
                if len(hook.requests) >= 7:
                    break
                await asyncio.sleep(0.05)
            doomed.send_signal(signal.SIGKILL)
            assert doomed.wait(10) == -signal.SIGKILL
        finally:
            if doomed.poll() is None:
                doomed.kill()
        before = len(hook.requests)
        assert 7 <= before < 30
        hook.script = lambda _r: Answer()
        clock = FakeClock()
        clock.advance(3)  # past the dead worker's lease
        await settle(deliverer(db, clock=clock, worker_id="survivor"))
    async with db.read() as conn:
        stored = set(
            (
                await conn.execute(select(events.c.id).where(events.c.account_sid == account.sid))
            ).scalars()
        )
    received = [r.headers["webhook-id"] for r in hook.requests]
    assert set(received) == stored  # every event, at least once
    # Only the round the kill interrupted can go twice: at most its five events.
    assert len(received) - len(stored) <= 5
