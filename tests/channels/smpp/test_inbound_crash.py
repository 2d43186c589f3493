"""Inbound messages are stored once however often the SMSC delivers them: a worker killed
with SIGKILL after storing one but before its deliver_sm_resp reached the SMSC gets it again
on the next bind, and the new worker recognises it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from opencomms.channels import InboundMessage
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.store.codec import loads
from opencomms.store.db import Database
from opencomms.store.tables import messages
from tests.channels.smsc.control import Smsc
from tests.dispatch.conftest import db, db_url, queue_pg_url
from tests.dispatch.helpers import ACCOUNT, FakeClock, ensure_account, eventually

__all__ = ["db", "db_url", "queue_pg_url"]

ROOT = Path(__file__).parents[3]
pytestmark = pytest.mark.slow

OURS = "+15005550006"
# Its own system_id: the SMSC delivers this test's messages to its workers alone, never to a
# channel another test on the same SMSC has not finished closing.
SYSTEM_ID = "inbound-crash"
LONG = "Can we move the appointment to Thursday afternoon instead? " * 4  # 236 septets: 2 parts


def start_worker(db_url: str, config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENCOMMS_CONFIG": str(config), "OPENCOMMS_POLL_INTERVAL": "0.1"}
    command = [sys.executable, "-m", "tests.dispatch.worker_process", db_url]
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def inbound_texts(db: Database) -> list[str]:
    async with db.read() as conn:
        query = select(messages.c.content).where(
            messages.c.status == "INBOUND", messages.c.account_sid == ACCOUNT
        )
        return sorted(loads(row.content)["text"] for row in await conn.execute(query))


async def test_an_inbound_message_redelivered_after_a_crash_is_stored_once(
    smsc: Smsc, db: Database, db_url: str, tmp_path: Path
) -> None:
    async with db.write() as conn:
        await ensure_account(conn)  # its default SMS sender is the number written to
    config = tmp_path / "opencomms.toml"
    config.write_text(
        f'[[routes]]\nname = "smsc"\ntype = "smpp"\nhost = "{smsc.host}"\nport = {smsc.port}\n'
        f'system_id = "{SYSTEM_ID}"\npassword = "secret"\nreconnect_min = 0.1\n'
    )
    # Every deliver_sm_resp of the first worker is lost on the way: stored, never acknowledged.
    await smsc.configure(loseDeliverResps=3)
    first = start_worker(db_url, config)
    try:
        await eventually(lambda: _bound(smsc), 30)
        first_text = {"from": "+447700900123", "to": OURS, "text": "Yes please"}
        await smsc.inbound(**first_text, systemId=SYSTEM_ID)
        long_text = {"from": "+447700900123", "to": OURS, "text": LONG}
        assert await smsc.inbound(**long_text, systemId=SYSTEM_ID) == 2
        expected = sorted(["Yes please", LONG.rstrip()])

        async def stored() -> bool:
            return len(await inbound_texts(db)) >= 2

        await eventually(stored, 30)
        await eventually(lambda: _count(smsc, "deliverLost", 3), 10)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (await smsc.stats())["deliverAcked"] == 0
    second = start_worker(db_url, config)
    try:
        # The SMSC delivers all three deliver_sm again; this time the answers arrive.
        await eventually(lambda: _count(smsc, "deliverAcked", 3), 30)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    stats = await smsc.stats()
    assert stats["redelivered"] >= 3 and stats["unacked"] == 0, stats
    assert [t.rstrip() for t in await inbound_texts(db)] == expected


async def _bound(smsc: Smsc) -> bool:
    return await smsc.bound_as(SYSTEM_ID) >= 1


async def _count(smsc: Smsc, key: str, value: int) -> bool:
    return (await smsc.stats())[key] >= value


async def test_the_same_text_again_after_the_repeat_window_is_a_new_message(
    db: Database,
) -> None:
    clock = FakeClock()
    async with db.write() as conn:
        await ensure_account(conn)
    worker = Dispatcher(db, {}, WorkerConfig(worker_id="w-inbound"), clock=clock)

    def arrival() -> InboundMessage:
        text = {"text": "OK"}
        return InboundMessage("SMS", "+447700900124", OURS, text, "smpp:k1", None, 600_000)

    await worker._on_inbound(arrival())
    clock.advance(599)  # a redelivery within the window
    await worker._on_inbound(arrival())
    assert await inbound_texts(db) == ["OK"]
    clock.advance(2)  # the same text sent again, later
    await worker._on_inbound(arrival())
    assert await inbound_texts(db) == ["OK", "OK"]
    # Without a key (the sandbox's replies), nothing is held back.
    await worker._on_inbound(InboundMessage("SMS", "+447700900124", OURS, {"text": "OK"}))
    assert await inbound_texts(db) == ["OK", "OK", "OK"]
