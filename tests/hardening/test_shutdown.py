"""SIGTERM (what a process manager sends) and SIGINT stop `serve` gracefully: the worker
stops claiming, finishes the hand-offs in hand, and the process exits 0, leaving no attempt
whose outcome is unknown."""

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from opencomms.dispatch.outcomes import OUTCOME_UNKNOWN
from opencomms.store.db import open_database
from opencomms.store.tables import attempts
from tests.hardening.processes import launch

pytestmark = pytest.mark.slow

SLOW_SANDBOX = {
    "OPENCOMMS_SANDBOX_LATENCY": "0.02",  # each hand-off takes a network round trip
    "OPENCOMMS_SEND_CONCURRENCY": "10",
    "OPENCOMMS_BATCH_SIZE": "100",  # a batch takes ~0.2 s: a signal lands inside one
    "OPENCOMMS_POLL_INTERVAL": "0.05",
}


async def attempt_counts(url: str, account: str) -> tuple[int, int, int]:
    """The account's attempts: all, still in flight, and marked outcome unknown."""
    db = open_database(url)
    mine = select(func.count()).select_from(attempts).where(attempts.c.account_sid == account)
    try:
        async with db.read() as conn:
            total = await conn.scalar(mine)
            in_flight = await conn.scalar(mine.where(attempts.c.status == "QUEUED"))
            unknown = await conn.scalar(mine.where(attempts.c.error_code == OUTCOME_UNKNOWN))
    finally:
        await db.dispose()
    return int(total or 0), int(in_flight or 0), int(unknown or 0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_drain_leaves_no_unknown_outcome(
    db_url: str, tmp_path: Path, sig: signal.Signals
) -> None:
    server = launch(db_url, tmp_path, env=SLOW_SANDBOX)
    recipients = [{"address": f"+1415555{i:04d}", "channel": "PHONE"} for i in range(1000)]
    with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=60) as http:
        sent = http.post("/v1/Messages", json={"to": recipients, "content": {"text": "Hi"}})
        assert sent.status_code == 202
        operation = "/v1" + sent.json()["operationLocation"].split("/v1", 1)[1]
        deadline = time.monotonic() + 60
        while http.get(operation).json()["stats"]["attempts"] < 150:
            assert time.monotonic() < deadline, "the worker never got going"
            time.sleep(0.05)
    started = time.monotonic()
    server.process.send_signal(sig)
    assert server.process.wait(timeout=40) == 0
    assert time.monotonic() - started < 35
    total, in_flight, unknown = asyncio.run(attempt_counts(db_url, server.account_sid))
    # Attempts started but not yet with the channel were given back (their rows removed), so
    # fewer may be left than the 150 seen in progress.
    assert 0 < total < 1000, "the signal did not land mid-drain"
    assert in_flight == 0
    # A restart finds nothing left in flight, so nothing is marked "outcome unknown".
    again = launch(db_url, tmp_path, env=SLOW_SANDBOX, credentials=server.auth)
    try:
        with httpx.Client(base_url=again.base_url, auth=again.auth, timeout=60) as http:
            deadline = time.monotonic() + 90
            while http.get(operation).json()["stats"]["delivered"] < 1000:
                assert time.monotonic() < deadline, "the rest was never delivered"
                time.sleep(0.2)
    finally:
        again.stop()
    assert asyncio.run(attempt_counts(db_url, server.account_sid))[2] == unknown == 0
