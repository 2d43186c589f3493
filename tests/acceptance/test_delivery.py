"""The whole product as a user meets it: one real `opencomms serve` process, API and worker,
sending to the sandbox's scripted numbers and reading every fate back through the API."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from opencomms.store.db import open_database
from opencomms.store.tables import attempts
from tests.acceptance.server import ServerProcess, start_server
from tests.api.conformance import assert_conforms, assert_response_conforms

FINAL = {"DELIVERED", "READ", "UNDELIVERED", "FAILED", "CANCELED"}
EXPECTED = {
    "+15005550001": ("FAILED", 21211),
    "+15005550004": ("FAILED", 21610),
    "+15005550010": ("UNDELIVERED", 30003),
    "+15005550020": ("READ", None),
    "+15005550040": ("DELIVERED", None),
    "+14155550100": ("DELIVERED", None),
}


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with its worker, retrying transient failures after a few milliseconds."""
    env = {"OPENCOMMS_BACKOFF_BASE": "0.01", "OPENCOMMS_POLL_INTERVAL": "0.05"}
    process = start_server(db_url, tmp_path, env=env)
    yield process
    process.stop()


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not reached in {timeout}s")


def test_sandbox_fates_through_the_api(live: ServerProcess) -> None:
    http = httpx.Client(base_url=live.base_url, auth=live.auth, follow_redirects=False)
    body = {
        "to": [
            {"address": number, "channel": "PHONE", "variables": {"n": number[-2:]}}
            for number in EXPECTED
        ],
        "content": {"text": "Order {{ n }} shipped"},
    }
    operation_id = http.post("/v1/Messages", json=body).json()["operationId"]

    def completed() -> dict[str, Any] | None:
        operation = http.get(f"/v1/Messages/Operations/{operation_id}").json()
        return operation if operation["status"] == "COMPLETED" else None

    operation = wait_for(completed)
    assert_conforms(operation, "MessageOperation")
    stats = operation["stats"]
    assert (
        stats["total"],
        stats["failed"],
        stats["undelivered"],
        stats["read"],
        stats["delivered"],
    ) == (6, 2, 1, 1, 2)
    # RCS first, then SMS: the two refused numbers are tried on both; the flaky one needs
    # three hand-offs.
    assert stats["attempts"] == 6 + 2 + 2

    listed = http.get("/v1/Messages", params={"operationId": operation_id}).json()["messages"]
    for summary in listed:
        message = http.get(f"/v1/Messages/{summary['id']}").json()
        assert_response_conforms(message, "/Messages/{messageId}", "get")
        address = message["to"][0]["address"]
        status, code = EXPECTED[address]
        assert message["status"] == status, address
        assert message["content"] == {"text": f"Order {address[-2:]} shipped"}
        last = message["attempts"][-1]
        assert (last["error"] or {}).get("code") == code
        refused = status == "FAILED"
        assert last["from"]["channel"] == ("SMS" if refused else "RCS")
        assert last["to"] == [{"address": address, "channel": "PHONE"}]
    assert http.get(f"/v1/Messages/Seek/SM{'0' * 32}").status_code == 404


def test_seek_finds_a_message_by_its_channel_id(live: ServerProcess) -> None:
    http = httpx.Client(base_url=live.base_url, auth=live.auth, follow_redirects=False)
    body = {"to": [{"address": "+14155550101", "channel": "PHONE"}], "content": {"text": "x"}}
    operation_id = http.post("/v1/Messages", json=body).json()["operationId"]
    [summary] = http.get("/v1/Messages", params={"operationId": operation_id}).json()["messages"]

    def delivered() -> dict[str, Any] | None:
        message = http.get(f"/v1/Messages/{summary['id']}").json()
        return message if message["status"] == "DELIVERED" else None

    message = wait_for(delivered)
    assert message["attempts"], message
    identifier = _external_id(live, summary["id"])
    seek = http.get(f"/v1/Messages/Seek/{identifier}")
    assert seek.status_code == 301
    assert seek.headers["location"] == f"{live.base_url}/v1/Messages/{summary['id']}"


def test_cancel_stops_a_scheduled_send_for_good(live: ServerProcess) -> None:
    http = httpx.Client(base_url=live.base_url, auth=live.auth)
    send_at = time.time() + 5
    body = {
        "to": [{"address": "+14155550102", "channel": "PHONE"}],
        "content": {"text": "x"},
        "schedule": {"sendAt": [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(send_at))]},
    }
    operation_id = http.post("/v1/Messages", json=body).json()["operationId"]
    assert http.post(f"/v1/Messages/Operations/{operation_id}/Cancel").status_code == 202
    assert time.time() < send_at, (
        "the cancel must come before sendAt for this test to mean anything"
    )
    time.sleep(max(0.0, send_at - time.time()) + 1.5)  # past sendAt: the worker had its chance
    operation = http.get(f"/v1/Messages/Operations/{operation_id}").json()
    assert operation["status"] == "CANCELED"
    assert operation["stats"]["canceled"] == 1
    assert operation["stats"]["attempts"] == 0


def _external_id(live: ServerProcess, message_id: str) -> str:
    """The sandbox's id for the hand-off, as an operator would read it from the database."""

    async def read() -> str:
        db = open_database(live.database_url)
        try:
            async with db.read() as conn:
                query = select(attempts.c.external_id).where(attempts.c.message_id == message_id)
                return str((await conn.execute(query)).scalar_one())
        finally:
            await db.dispose()

    return asyncio.run(read())
