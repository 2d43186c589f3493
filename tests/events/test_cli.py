"""`opencomms sinks add` and `opencomms events replay` as users run them, and delivery inside
a real `opencomms serve` process."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from opencomms.cli.app import app
from opencomms.cli.events import CliError, since_ms, type_names
from opencomms.events import sinks, types
from opencomms.store.accounts import NewCredential
from opencomms.store.db import Database
from opencomms.store.tables import event_deliveries, event_subscribed_types
from tests.conftest import SECRET
from tests.events.helpers import emit, lifecycle
from tests.events.receiver import receiver

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


def opencomms(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opencomms", *args],
        check=False,
        cwd=cwd,
        env={**os.environ, "OPENCOMMS_SECRET_KEY": SECRET, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_sinks_add_and_replay(
    db: Database, db_url: str, account: NewCredential, tmp_path: Path
) -> None:
    added = opencomms(
        "sinks", "add", "https://hooks.example.com/in",
        "--types", "message.delivered,message.failed",
        "--account", account.sid, "--batch", "--json", "--database-url", db_url,
        cwd=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    created = json.loads(added.stdout)
    assert created["signingSecret"].startswith("whsec_")
    async with db.read() as conn:
        sink = await sinks.get_sink(conn, account.sid, created["sinkSid"])
        subscribed = select(event_subscribed_types.c.type).where(
            event_subscribed_types.c.sink_sid == created["sinkSid"]
        )
        chosen = set((await conn.execute(subscribed)).scalars())
    assert sink is not None and sink.status == sinks.ACTIVE
    assert sink.configuration["batch_events"] is True
    assert chosen == {f"{types.PREFIX}.message.delivered", f"{types.PREFIX}.message.failed"}

    await emit(db, lifecycle(account.sid, "m1"))  # one of its three events is subscribed
    replayed = opencomms(
        "events", "replay", "--sink", created["sinkSid"], "--since", "1h",
        "--database-url", db_url, cwd=tmp_path,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == f"1 events queued for {created['sinkSid']}"
    async with db.read() as conn:
        owed = select(event_deliveries.c.event_id).where(
            event_deliveries.c.sink_sid == created["sinkSid"]
        )
        assert len((await conn.execute(owed)).all()) == 1


def test_bad_arguments_are_refused_before_any_write(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'never.db'}"
    unknown = runner.invoke(
        app, ["sinks", "add", "https://x.example", "--types", "message.nope", "--database-url", url]
    )
    assert unknown.exit_code == 1 and "unknown event types" in unknown.output
    bad_url = runner.invoke(app, ["sinks", "add", "ftp://x.example", "--database-url", url])
    assert bad_url.exit_code == 1 and "http(s)" in bad_url.output
    assert not (tmp_path / "never.db").exists()


def test_since_takes_times_and_durations() -> None:
    now = 1_800_000_000_000
    assert since_ms("2h", now) == now - 7_200_000
    assert since_ms("7d", now) == now - 7 * 86_400_000
    moment = datetime(2027, 1, 15, 8, tzinfo=UTC)
    assert since_ms("2027-01-15T08:00:00Z", now) == int(moment.timestamp() * 1000)
    with pytest.raises(CliError):
        since_ms("yesterday", now)
    assert type_names([]) == list(types.ALL_TYPES)
    assert type_names(["message.sent", f"{types.PREFIX}.message.sent"]) == [
        f"{types.PREFIX}.message.sent"
    ]


async def test_serve_delivers_the_test_event_and_validates(db_url: str, tmp_path: Path) -> None:
    from tests.acceptance.server import start_server

    env = {"OPENCOMMS_EVENTS_ALLOWED_NETWORKS": "127.0.0.0/8", "OPENCOMMS_SECRET_KEY": SECRET}
    server = await asyncio.to_thread(start_server, db_url, tmp_path, env=env)
    try:
        async with (
            receiver() as hook,
            httpx.AsyncClient(base_url=server.base_url, auth=server.auth) as api,
        ):
            config = {"destination": hook.url, "method": "POST", "batch_events": False}
            created = await api.post(
                "/v1/Sinks",
                data={
                    "Description": "served",
                    "SinkType": "webhook",
                    "SinkConfiguration": orjson.dumps(config).decode(),
                },
            )
            sid = created.json()["sid"]
            assert (await api.post(f"/v1/Sinks/{sid}/Test")).status_code == 201
            for _ in range(200):
                if hook.requests:
                    break
                await asyncio.sleep(0.05)
            [event] = hook.events()
            validated = await api.post(f"/v1/Sinks/{sid}/Validate", data={"TestId": event["id"]})
            assert validated.json() == {"result": "valid"}
            # The receiver has the event before the worker has recorded its success.
            for _ in range(200):
                fetched = (await api.get(f"/v1/Sinks/{sid}")).json()
                if fetched["delivery"]["last_success"] is not None:
                    break
                await asyncio.sleep(0.05)
            assert fetched["status"] == "active"
            assert fetched["delivery"]["last_success"] is not None
            assert fetched["delivery"]["events_waiting"] == 0
    finally:
        await asyncio.to_thread(server.stop)
