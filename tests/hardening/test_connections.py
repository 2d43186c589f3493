"""Connections against a real server process with a lowered open-file limit: idle crowds,
slow headers, huge headers. Others keep being served, and the log stays small."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from tests.acceptance.server import ServerProcess
from tests.hardening.processes import launch

pytestmark = pytest.mark.slow

OPEN_FILES = 256
ONE = {"to": [{"address": "+14155550100", "channel": "PHONE"}], "content": {"text": "Hi"}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"OPENCOMMS_KEEP_ALIVE_SECONDS": "2", "OPENCOMMS_HEADER_TIMEOUT": "1"}
    process = launch(
        f"sqlite:///{tmp_path / 'o.db'}", tmp_path, "--no-worker", env=env, open_files=OPEN_FILES
    )
    yield process
    process.stop()


def port_of(server: ServerProcess) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def test_two_thousand_idle_connections_lock_nobody_out(server: ServerProcess) -> None:
    idle: list[socket.socket] = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", port_of(server)), timeout=5))
        # The crowd is in; work still gets done, at once.
        with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=10) as http:
            for _ in range(5):
                assert http.get("/healthz").status_code == 200
                assert http.post("/v1/Messages", json=ONE).status_code == 202
        fds = psutil.Process(server.process.pid).num_fds()
        assert fds < OPEN_FILES
    finally:
        for sock in idle:
            sock.close()
    log = server.log.read_text()
    assert len(log) < 100_000, f"{len(log)} bytes of log"
    assert "out of system resource" not in log


def read_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_an_idle_connection_is_closed(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        start = time.monotonic()
        assert read_all(sock, timeout=10) == b""
        assert time.monotonic() - start < 6


def test_slow_headers_get_a_408_and_a_close(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = read_all(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()
    assert b'"errors"' in answer


def test_huge_headers_get_a_431(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):
            sock.sendall(b"X-Filler: " + b"a" * 4000 + b"\r\n")
        answer = read_all(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_large_body_is_not_taken_for_large_headers(server: ServerProcess) -> None:
    # The read that ends the headers carries the body's first 64 KiB and more: a 10,000-
    # recipient send (about 700 KiB) was refused with 431 before the count stopped there.
    to = [{"address": f"+1415555{i:04d}", "channel": "PHONE"} for i in range(10_000)]
    with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=60) as http:
        sent = http.post("/v1/Messages", json={"to": to, "content": {"text": "Hi"}})
    assert sent.status_code == 202, sent.text


def test_error_answers_keep_the_connection_or_close_it(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=10) as http:
        bad = http.post(
            "/v1/Messages", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        assert http.get("/healthz").status_code == 200  # same connection, still usable
        wrong = http.post("/v1/Messages", content=b"x" * 10, headers={"content-type": "text/plain"})
        assert wrong.status_code == 415
        assert wrong.headers["connection"] == "close"
        assert http.get("/healthz").status_code == 200  # a new connection
