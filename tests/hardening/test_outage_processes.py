"""Outages against real server processes: PostgreSQL cut away under load, and a SQLite file
made read-only, then given back; the server recovers by itself, without a restart."""

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from opencomms.store.db import Database
from tests.acceptance.server import ServerProcess, start_server
from tests.dispatch.conftest import pg_db, queue_pg_url
from tests.hardening.proxy import TcpProxy

# A database of its own, emptied first: the server's worker claims every due message in its
# database, and the session's shared one holds what other tests left queued.
__all__ = ["pg_db", "queue_pg_url"]

pytestmark = pytest.mark.slow

ONE = {"to": [{"address": "+14155550100", "channel": "PHONE"}], "content": {"text": "Hi"}}


def through_proxy(pg_url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(pg_url)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()


class Load:
    """Clients posting one-recipient sends, recording every answer."""

    def __init__(self, server: ServerProcess, clients: int = 4) -> None:
        self.server = server
        self.accepted: list[str] = []
        self.refused: list[httpx.Response] = []
        self.broken: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post) for _ in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _post(self) -> None:
        with httpx.Client(base_url=self.server.base_url, auth=self.server.auth, timeout=10) as c:
            while not self._stop.is_set():
                try:
                    response = c.post("/v1/Messages", json=ONE)
                except httpx.TransportError as error:
                    self.broken.append(repr(error))
                    continue
                if response.status_code == 202:
                    self.accepted.append(response.json()["operationId"])
                else:
                    self.refused.append(response)
                    time.sleep(0.05)


def delivered(http: httpx.Client, operation_id: str) -> bool:
    stats = http.get(f"/v1/Messages/Operations/{operation_id}").json()["stats"]
    return bool(stats["delivered"] == stats["total"] == 1)


def test_postgresql_cut_away_under_load(pg_db: Database, queue_pg_url: str, tmp_path: Path) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        env = {"OPENCOMMS_POLL_INTERVAL": "0.1", "OPENCOMMS_BACKOFF_BASE": "0.05"}
        server = start_server(through_proxy(queue_pg_url, proxy), tmp_path, env=env)
        try:
            with Load(server) as load:
                time.sleep(1.0)
                proxy.cut()
                time.sleep(2.0)
                proxy.restore()
                time.sleep(2.0)
            assert load.accepted, "nothing was accepted before or after the outage"
            assert load.refused, "the outage was never seen"
            for response in load.refused:
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"].isdigit()
                assert response.json()["errors"][0]["code"] == 20503
            # The client's own connection is never cut: every POST got an answer it can act
            # on (a 503 closes its connection, and the next request opens a new one).
            assert not load.broken, load.broken[:3]
            with httpx.Client(base_url=server.base_url, auth=server.auth) as http:
                deadline = time.monotonic() + 60
                pending = set(load.accepted)
                while pending and time.monotonic() < deadline:
                    pending = {op for op in pending if not delivered(http, op)}
                    time.sleep(0.2)
                assert not pending, f"{len(pending)} accepted sends never delivered"
        finally:
            server.stop()
        log = server.log.read_text()
        # The API side never fails unexpectedly (the worker's own retry log is its business).
        assert "Exception in ASGI application" not in log
        assert "unhandled error" not in log


def chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True)


def can_make_immutable(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.touch()
    try:
        chattr("+i", probe)
    except (OSError, subprocess.CalledProcessError):
        return False
    chattr("-i", probe)
    return True


def test_sqlite_read_only_then_writable_again(tmp_path: Path) -> None:
    """The file turns read-only (immutable: root ignores permission bits); connections the
    pool opens meanwhile are read-only for good. They must be dropped, not kept."""
    if not can_make_immutable(tmp_path):
        pytest.skip("chattr +i is not permitted here")
    database = tmp_path / "opencomms.db"
    server = start_server(f"sqlite:///{database}", tmp_path, "--no-worker")
    http = httpx.Client(base_url=server.base_url, auth=server.auth, timeout=10)
    try:
        assert http.post("/v1/Messages", json=ONE).status_code == 202
        chattr("+i", database)
        try:
            # Concurrent reads make the pool open new connections: read-only ones.
            with ThreadPoolExecutor(12) as pool:
                list(pool.map(lambda _: http.get("/v1/Messages"), range(48)))
            during = [http.post("/v1/Messages", json=ONE) for _ in range(12)]
            ready = http.get("/readyz")
        finally:
            chattr("-i", database)
        after = []
        while len(after) < 60 and [r.status_code for r in after[-20:]] != [202] * 20:
            after.append(http.post("/v1/Messages", json=ONE))
    finally:
        http.close()
        server.stop()
    assert {a.status_code for a in during} <= {202, 503}
    # Writes may all go through a connection opened before (SQLite's group committer): then
    # nothing is refused at all. Whatever is refused says when to retry.
    refused = [a for a in during + after if a.status_code == 503]
    assert all(a.headers["retry-after"].isdigit() for a in refused)
    assert ready.status_code in (200, 503)
    # Each read-only connection fails once and is gone: twenty 202s in a row follow.
    assert [r.status_code for r in after[-20:]] == [202] * 20
    assert "Exception in ASGI application" not in server.log.read_text()
