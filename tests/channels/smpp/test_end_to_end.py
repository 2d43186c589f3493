"""Through the whole product: a real server whose SMS sender is on an smpp route to the SMSC."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencomms.store.db import Database
from tests.acceptance.server import ServerProcess, start_server
from tests.channels.smsc.control import Smsc
from tests.dispatch.conftest import db, db_url, queue_pg_url

# The queue tests' own database, emptied for each test: a server's worker claims every due
# message in its database, and the session's shared one holds what other tests left queued.
__all__ = ["db", "db_url", "queue_pg_url"]

pytestmark = pytest.mark.slow


@pytest.fixture
def live(smsc: Smsc, db: Database, db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    config = tmp_path / "opencomms.toml"
    config.write_text(
        f"""
[[routes]]
name = "smsc"
type = "smpp"
host = "{smsc.host}"
port = {smsc.port}
system_id = "opencomms"
password = "secret"
window = 16

[[senders]]
channel = "SMS"
address = "+15005550006"
route = "smsc"
"""
    )
    server = start_server(db_url, tmp_path, env={"OPENCOMMS_CONFIG": str(config)})
    yield server
    server.stop()


async def test_sms_goes_out_over_smpp_and_its_receipts_settle_it(
    smsc: Smsc, live: ServerProcess
) -> None:
    await smsc.configure(receiptStat={"14155550111": ["UNDELIV", 1]}, receipts="before")
    recipients = ["+14155550110", "+14155550111", "+14155550112"]
    body = {
        "to": [{"address": a, "channel": "PHONE"} for a in recipients],
        "content": {"text": "Your code is 1234 {% raw %}{€}{% endraw %}"},
    }
    async with httpx.AsyncClient(base_url=live.base_url, auth=live.auth, timeout=10) as http:
        answer = await http.post("/v1/Messages", json=body)
        assert answer.status_code == 202, answer.text
        operation = f"/v1/Messages/Operations/{answer.json()['operationId']}"
        async with asyncio.timeout(60):
            while (done := (await http.get(operation)).json())["status"] != "COMPLETED":  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.2)
        assert (done["stats"]["delivered"], done["stats"]["undelivered"]) == (2, 1), done
        listed = await http.get("/v1/Messages", params={"operationId": done["id"]})
        by_to: dict[str, dict[str, Any]] = {}
        for summary in listed.json()["messages"]:
            message = (await http.get(f"/v1/Messages/{summary['id']}")).json()
            by_to[message["to"][0]["address"]] = message
        failed = by_to["+14155550111"]
        assert failed["status"] == "UNDELIVERED"
        assert failed["attempts"][-1]["error"]["code"] == 30005, failed
        submits = {s["destination"]: s for s in await smsc.submits()}
        assert submits["14155550110"]["text"] == "Your code is 1234 {€}"
        seek = await http.get(f"/v1/Messages/Seek/{submits['14155550110']['id']}")
        assert seek.status_code == 301
        assert seek.headers["location"].endswith(by_to["+14155550110"]["id"])
    stats = await smsc.stats()
    assert (stats["unique"], stats["duplicates"], stats["unacked"]) == (3, 0, 0)


async def test_a_long_sms_settles_on_all_its_parts_and_seek_finds_it_by_any(
    smsc: Smsc, live: ServerProcess
) -> None:
    to = "14155550120"
    # Receipts overtake their responses; the middle part's is held back until sent below.
    await smsc.configure(receiptStat={f"{to}#2": ["NONE", 0]}, receipts="before")
    body = {
        "to": [{"address": f"+{to}", "channel": "PHONE"}],
        "content": {"text": "Привет! " * 25},  # UCS-2, 200 units: 3 parts of 67
    }
    async with httpx.AsyncClient(base_url=live.base_url, auth=live.auth, timeout=10) as http:
        answer = await http.post("/v1/Messages", json=body)
        assert answer.status_code == 202, answer.text
        operation = f"/v1/Messages/Operations/{answer.json()['operationId']}"
        await smsc.wait_for("deliverAcked", 2, within=30)  # parts 1 and 3: stored, answered
        ids = [s["id"] for s in sorted(await smsc.submits(), key=lambda s: s["part"])]
        assert len(ids) == 3
        async with asyncio.timeout(30):  # until the hand-off's result is recorded
            while (await http.get(f"/v1/Messages/Seek/{ids[0]}")).status_code == 404:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.1)
        found = set()
        for part in ids:
            seek = await http.get(f"/v1/Messages/Seek/{part}")
            assert seek.status_code == 301, (part, seek.text)
            found.add(seek.headers["location"])
        [message_url] = found
        message = (await http.get(message_url)).json()
        assert message["status"] == "SENT", message  # two parts of three delivered
        await smsc.receipt(ids[1], "DELIVRD")
        async with asyncio.timeout(30):
            while (await http.get(operation)).json()["status"] != "COMPLETED":  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.1)
        assert (await http.get(message_url)).json()["status"] == "DELIVERED"
    stats = await smsc.stats()
    assert (stats["unique"], stats["duplicates"], stats["unacked"]) == (3, 0, 0)
