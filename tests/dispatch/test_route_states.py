"""/readyz shows each route's state as the workers report it, in fixed words, to anyone."""

import asyncio
import json
import subprocess
import sys
from typing import Any

from opencomms.clock import now_ms
from opencomms.store import route_states
from opencomms.store.db import Database
from opencomms.store.route_states import RouteState
from tests.conftest import make_client


async def readyz(db: Database) -> dict[str, Any]:
    async with make_client(db, None) as anonymous:
        response = await anonymous.get("/readyz")
    assert response.status_code == 200  # a route down does not make the server unready
    body: dict[str, Any] = response.json()
    return body


async def test_no_worker_says_so(db: Database) -> None:
    body = await readyz(db)
    assert body["status"] == "ready"
    assert body["workers"] == 0
    assert body["routes"] == []
    assert "No worker is running" in str(body["note"])


async def test_routes_up_down_and_degraded_across_workers(db: Database) -> None:
    now = now_ms()
    async with db.write() as conn:
        await route_states.report(
            conn,
            [
                RouteState("w1", "smpp-a", False, "login refused", now - 5000, now),
                RouteState("w2", "smpp-a", False, "connection refused", now - 9000, now),
                RouteState("w1", "smtp", True, "", now - 60_000, now),
                RouteState("w2", "smtp", False, "connection lost", now - 1000, now),
                RouteState("w1", "sandbox", True, "", now - 60_000, now),
                # A worker silent for minutes is gone: its view no longer counts.
                RouteState("dead", "sandbox", False, "connection lost", 0, now - 300_000),
            ],
        )
    body = await readyz(db)
    assert body["workers"] == 2
    routes = {r["name"]: r for r in body["routes"]}
    assert routes["smpp-a"]["state"] == "down"
    assert routes["smpp-a"]["reason"] == "connection refused, login refused"
    assert routes["smtp"]["state"] == "degraded"
    assert routes["smtp"]["reason"] == "connection lost"
    assert routes["sandbox"] == {
        "name": "sandbox",
        "state": "up",
        "since": routes["sandbox"]["since"],
    }
    assert routes["smpp-a"]["since"].endswith("Z")
    async with db.write() as conn:
        await route_states.forget(conn, "w1", now - 60_000)
        left = await route_states.fresh(conn, 0)
    assert {s.worker_id for s in left} == {"w2"}


async def test_the_status_command_shows_the_same(db: Database, db_url: str) -> None:
    now = now_ms()
    async with db.write() as conn:
        await route_states.report(
            # Reported "in the future": two command starts on a loaded machine may outlast
            # the 30 s after which a silent worker no longer counts.
            conn,
            [RouteState("w1", "carrier", False, "login refused", now - 5000, now + 600_000)],
        )
    command = [sys.executable, "-m", "opencomms", "status", "--database-url", db_url]
    shown = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "workers: 1"
    assert shown.stdout.splitlines()[1].startswith("carrier: down (login refused) since 20")
    as_json = await asyncio.to_thread(
        subprocess.run, [*command, "--json"], capture_output=True, text=True
    )
    assert json.loads(as_json.stdout)["routes"][0]["state"] == "down"
