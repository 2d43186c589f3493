"""Plumbing the benchmarks share: real `opencomms` processes, throw-away databases, meters.

Nothing here measures anything by itself. It starts `opencomms serve` (with or without its
in-process worker) and `opencomms worker` processes on 127.0.0.1, each logging to a file in a
temporary directory; creates a fresh PostgreSQL database `opencomms_bench_<hex>` (migrated with
`opencomms migrate`, dropped with FORCE afterwards) or names a SQLite file in that directory;
stops every process with SIGTERM, then SIGKILL after STOP_TIMEOUT_S; and reads the CPU time and
peak RSS (VmHWM) of the processes it started.

PostgreSQL is reached at postgresql://postgres@127.0.0.1:5432 with trust auth, or at the admin
URL in OPENCOMMS_BENCH_PG_URL. Used by bench/accept.py and bench/drain.py; not run on its own.
"""

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]

PG_ADMIN_URL = os.environ.get(
    "OPENCOMMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 120.0
POLL_S = 0.1
JSON_HEADERS = {"content-type": "application/json"}


class BenchError(RuntimeError):
    """A process did not start or died, or the server answered something unexpected."""


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    auth_token: str

    @classmethod
    def new(cls) -> "Credentials":
        return cls("AC" + secrets.token_hex(16), secrets.token_hex(16))


# Processes.


def opencomms_command() -> list[str]:
    script = Path(sys.executable).with_name("opencomms")
    return [str(script)] if script.exists() else [sys.executable, "-m", "opencomms"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def process_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child: warnings only, no inherited database URL."""
    env = dict(os.environ)
    env.pop("OPENCOMMS_DATABASE_URL", None)
    env.update(OPENCOMMS_LOG_LEVEL="warning", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def server_env(credentials: Credentials, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = process_env(extra)
    env.update(
        OPENCOMMS_ACCOUNT_SID=credentials.account_sid,
        OPENCOMMS_AUTH_TOKEN=credentials.auth_token,
    )
    return env


@contextmanager
def log_file(path: Path) -> Iterator[TextIO]:
    with path.open("w") as handle:
        yield handle


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def run_command(args: list[str], cwd: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchError(f"{' '.join(args)} took over {COMMAND_TIMEOUT_S} s") from None
    if process.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed:\n{output.decode(errors='replace')}")


@dataclass(frozen=True)
class Child:
    """A started `opencomms` process and the file its output goes to."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.returncode is not None:
            raise BenchError(
                f"the {self.name} exited with {self.process.returncode}:\n{log_tail(self.log)}"
            )


async def start(name: str, args: list[str], workdir: Path, env: dict[str, str]) -> Child:
    """Starts `opencomms <args>` in workdir, its output in <name>.log there."""
    log = workdir / f"{name.replace(' ', '-')}.log"
    with log_file(log) as output:
        process = await asyncio.create_subprocess_exec(
            *opencomms_command(), *args, cwd=workdir, env=env, stdout=output, stderr=output
        )
    return Child(name, process, log)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()


async def stop_all(children: list[Child]) -> None:
    """Stops them all at once (SIGTERM, SIGKILL after STOP_TIMEOUT_S), even if one fails."""
    await asyncio.gather(*(stop(child.process) for child in children), return_exceptions=True)


# Databases.


@asynccontextmanager
async def postgres_database(workdir: Path) -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards."""
    name = "opencomms_bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        await run_command([*opencomms_command(), "migrate", "--database-url", url], workdir)
        yield url
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """The URL of an empty database of that kind ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'opencomms.db'}"
        return
    async with postgres_database(workdir) as url:
        yield url


# Servers and workers.


@dataclass(frozen=True)
class Server:
    """A running `opencomms serve` and the base URL of its API."""

    child: Child
    base_url: str

    @property
    def pid(self) -> int:
        return self.child.pid


async def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            server.child.check_alive()
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(POLL_S)
    tail = log_tail(server.child.log)
    raise BenchError(f"the server was not ready within {READY_TIMEOUT_S} s:\n{tail}")


@asynccontextmanager
async def server(
    database_url: str,
    workdir: Path,
    credentials: Credentials,
    *,
    worker: bool,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Server]:
    """A running, ready `opencomms serve`: with its in-process worker, or `--no-worker`."""
    port = free_port()
    mode = [] if worker else ["--no-worker"]
    args = ["serve", *mode, "--host", HOST, "--port", str(port), "--database-url", database_url]
    child = await start("server", args, workdir, server_env(credentials, env))
    running = Server(child, f"http://{HOST}:{port}")
    try:
        await wait_ready(running)
        yield running
    finally:
        await stop(child.process)


def database_port(database_url: str) -> int:
    return urlsplit(database_url).port or 5432


async def wait_connected(child: Child, port: int) -> None:
    """Waits until the process holds a TCP connection to the database's port."""
    process = psutil.Process(child.pid)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        child.check_alive()
        if any(c.raddr and c.raddr.port == port for c in process.net_connections("tcp")):
            return
        await asyncio.sleep(POLL_S)
    raise BenchError(
        f"the {child.name} did not connect within {READY_TIMEOUT_S} s:\n{log_tail(child.log)}"
    )


@asynccontextmanager
async def workers(
    database_url: str, workdir: Path, count: int, env: Mapping[str, str] | None = None
) -> AsyncIterator[list[Child]]:
    """`count` running `opencomms worker` processes on a PostgreSQL database, each connected."""
    args = ["worker", "--database-url", database_url]
    started: list[Child] = []
    try:
        for index in range(1, count + 1):
            started.append(await start(f"worker {index}", args, workdir, process_env(env)))
        port = database_port(database_url)
        await asyncio.gather(*(wait_connected(child, port) for child in started))
        yield started
    finally:
        await stop_all(started)


# Meters.


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MB; read it before stopping it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds each named process used over one measured stretch of wall time."""

    seconds: dict[str, float]
    wall_s: float


class CpuMeter:
    """CPU seconds of the given processes and of this one ("client") from now on."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.processes["client"] = psutil.Process()
        self.start = {name: cpu_seconds(p) for name, p in self.processes.items()}
        self.started = time.perf_counter()

    def read(self) -> CpuUse:
        used = {name: cpu_seconds(p) - self.start[name] for name, p in self.processes.items()}
        return CpuUse(used, time.perf_counter() - self.started)


def api_client(base_url: str, credentials: Credentials, connections: int) -> httpx.AsyncClient:
    """An HTTP client for the API with Basic auth, keeping `connections` alive."""
    return httpx.AsyncClient(
        base_url=base_url,
        auth=(credentials.account_sid, credentials.auth_token),
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"
