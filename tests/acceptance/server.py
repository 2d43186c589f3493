"""A real `opencomms serve` process for tests that need one."""

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    account_sid: str
    auth_token: str
    log: Path
    database_url: str = ""

    @property
    def auth(self) -> tuple[str, str]:
        return (self.account_sid, self.auth_token)

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)


def start_server(
    database_url: str, workdir: Path, *extra: str, env: dict[str, str] | None = None
) -> ServerProcess:
    port = free_port()
    sid, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    log = workdir / f"server-{port}.log"
    environment = {
        **os.environ,
        "OPENCOMMS_ACCOUNT_SID": sid,
        "OPENCOMMS_AUTH_TOKEN": token,
        "OPENCOMMS_SECRET_KEY": "acceptance-key",
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "opencomms",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        *extra,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", sid, token, log, database_url)
    wait_ready(server)
    return server


def wait_ready(server: ServerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log.read_text()}")
        try:
            if httpx.get(server.base_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not ready in {timeout}s:\n{server.log.read_text()}")
