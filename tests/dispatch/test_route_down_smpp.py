"""An SMPP route whose SMSC stops: its messages wait (no attempt used, nothing failed) and
the route is reported down; the SMSC restarted on the same port, they are handed off, each
in one attempt. The real test SMSC (tests/channels/smsc), through dispatch."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from opencomms.channels.smpp import SmppChannel
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.dispatch.routes import route_view
from opencomms.dispatch.worker import serve
from opencomms.store.db import Database
from tests.acceptance.server import free_port
from tests.channels.smsc.control import SmscNotInstalled, running
from tests.dispatch.helpers import attempt_rows, body, message_rows, send

pytestmark = pytest.mark.slow

HANDED = ("SENT", "DELIVERED")


async def wait_until(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def statuses(db: Database, op: str) -> set[str]:
    return {r["status"] for r in await message_rows(db, op)}


async def test_messages_wait_while_the_smsc_is_down_and_go_when_it_is_back(
    db: Database,
) -> None:
    port = free_port()
    channel = SmppChannel(
        name="sandbox",  # the default SMS sender's route
        host="127.0.0.1",
        port=port,
        system_id="opencomms",
        password="secret",
        reconnect_min=0.05,
        reconnect_max=0.3,
        connect_timeout=1,
        response_timeout=2,
    )
    config = WorkerConfig(worker_id="w-smpp", poll_interval=0.1, route_retry_max=1)
    stop = asyncio.Event()
    async with Dispatcher(db, {"sandbox": channel}, config) as dispatcher:
        worker = asyncio.create_task(serve(dispatcher, [], stop))
        try:
            async with _smsc(port):
                before = await send(db, body("+14155550001", "+14155550002"))
                await wait_until(lambda: _all_in(db, before, HANDED), 20)
                assert route_view(dispatcher.routes, dispatcher.channels, now_ms())[0].up
            # The SMSC is gone: what is sent now waits.
            during = await send(db, body("+14155550003", "+14155550004", "+14155550005"))
            await asyncio.sleep(4)  # several probes, each refused
            rows = await _between_probes(db, during)
            assert {r["status"] for r in rows} == {"QUEUED"}
            assert {r["attempt_count"] for r in rows} == {0}
            [view] = route_view(dispatcher.routes, dispatcher.channels, now_ms())
            assert not view.up
            assert view.reason in ("connection refused", "connection lost")
            async with _smsc(port):
                await wait_until(lambda: _all_in(db, during, HANDED), 30)
        finally:
            stop.set()
            await worker
    rows = await message_rows(db, during)
    assert {r["attempt_count"] for r in rows} == {1}  # the refused probes used none
    assert [len(await attempt_rows(db, str(r["id"]))) for r in rows] == [1, 1, 1]


@asynccontextmanager
async def _smsc(port: int) -> AsyncIterator[None]:
    try:
        async with running("--port", str(port)):
            yield
    except SmscNotInstalled as error:
        pytest.skip(str(error))


async def _between_probes(db: Database, op: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        rows = await message_rows(db, op)
        if not [a for r in rows for a in await attempt_rows(db, str(r["id"]))]:
            return rows
        assert time.monotonic() < deadline, "attempts stay in flight while the route is down"
        await asyncio.sleep(0.02)


async def _all_in(db: Database, op: str, wanted: tuple[str, ...]) -> bool:
    return (await statuses(db, op)) <= set(wanted)
