"""Accept-path benchmark: OpenComms beside Prism's canned mock of the same spec, in one run.

Prism (`@stoplight/prism-cli` from the npm registry, installed by this script into a cache
folder) answers every request from the spec's examples and writes nothing; OpenComms validates,
renders and commits every recipient before its 202. Both run side by side, pinned with
`taskset`: every server on core 0, the load (bench/loadgen.py, a lean keep-alive HTTP/1.1
client in its own process) on core 1. Measurements alternate between the servers, round after
round, and each figure is printed as the median and range of the rounds with its ratio to
Prism's:

- `post1`: 1-recipient POST /v1/Messages from 16 connections: req/s and server CPU per request;
- `post10k`: one 10,000-recipient POST at a time (3 variables, 5 tags): p50 and p99 latency
  and the server's CPU per send;
- `list`, `message`, `op10`, `op10k`: GET /v1/Messages?pageSize=50, GET /v1/Messages/{id},
  GET /v1/Messages/Operations/{id} of a 10-message and of a 10,000-message operation, from 16
  connections, on a database holding `--messages` messages (default 1,000,000): req/s and
  server CPU per request;
- startup to a healthy /healthz, and idle RSS, over `--rounds` fresh starts.

OpenComms runs `serve --no-worker` (nothing else competes for its core) with logging at
warning. PostgreSQL is postgresql://postgres@127.0.0.1:5432 (or OPENCOMMS_BENCH_PG_URL); it
runs outside the pinning, and its CPU is not counted in the server's.

    .venv/bin/python bench/accept.py                       # everything (takes a while)
    .venv/bin/python bench/accept.py --database sqlite --messages 100000 --seconds 5
"""

import argparse
import asyncio
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil  # type: ignore[import-untyped]

from common import (
    HOST,
    BenchError,
    Credentials,
    database,
    free_port,
    load_average,
    log_tail,
    opencomms_command,
    server_env,
)

PRISM_VERSION = "5.16.0"
PRISM_HOME = Path(os.environ.get("OPENCOMMS_PRISM_HOME", Path.home() / ".cache/opencomms-prism"))
SPEC = Path(__file__).parents[1] / "src" / "opencomms" / "spec" / "twilio_comms_v1.yaml"
LOADGEN = Path(__file__).with_name("loadgen.py")
SERVER_CPU, LOAD_CPU = "0", "1"
CONNECTIONS = 16
BIG = 10_000
BIG_RUNS = 20
READY_TIMEOUT_S = 60.0
TEXT = "Hi {{ first }} {{ last }}, your code is {{ code }}"
TAGS = {"campaign": "spring-sale", "team": "growth", "region": "us-west", "priority": "high"}
TAGS["batch"] = "b-0001"


# Request bodies and bytes.


def recipient(index: int) -> dict[str, Any]:
    return {
        "address": f"+1{('206', '415')[index % 2]}555{index % 10_000:04d}",
        "channel": "PHONE",
        "variables": {"first": f"First{index}", "last": f"Last{index}", "code": f"{index:06d}"},
    }


def send_body(count: int) -> bytes:
    body = {"to": [recipient(i) for i in range(count)], "content": {"text": TEXT}, "tags": TAGS}
    return orjson.dumps(body)


def raw_request(method: str, path: str, auth: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Basic {auth}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


# Servers.


@dataclass
class Target:
    """One server under test: how to start it and where its API lives."""

    name: str
    prefix: str  # "/v1" for OpenComms, "" for Prism (it serves the spec's paths bare)
    command: Callable[[int], list[str]]
    env: dict[str, str]
    workdir: Path
    process: asyncio.subprocess.Process | None = None
    port: int = 0
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def is_prism(self) -> bool:
        return self.name == "prism"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def cpu_seconds(self) -> float:
        """CPU of the server and its children (Prism forks node workers)."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def rss_mb(self) -> float:
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        procs = [root, *root.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 1e6


async def start(target: Target) -> float:
    """Starts the target pinned to the server core; returns seconds to a healthy answer."""
    target.port = free_port()
    args = ["taskset", "-c", SERVER_CPU, *target.command(target.port)]
    began = time.perf_counter()
    with target.log.open("a") as log:
        target.process = await asyncio.create_subprocess_exec(
            *args, cwd=target.workdir, env=target.env, stdout=log, stderr=log
        )
    health = "/Messages/Operations" if target.is_prism else "/healthz"
    url = f"http://{HOST}:{target.port}{health}"
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.perf_counter() - began < READY_TIMEOUT_S:
            if target.process.returncode is not None:
                raise BenchError(f"{target.name} exited:\n{log_tail(target.log)}")
            try:
                if (await client.get(url, auth=("AC" + "0" * 32, "x"))).status_code < 500:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.02)
    raise BenchError(f"{target.name} not healthy in {READY_TIMEOUT_S} s:\n{log_tail(target.log)}")


async def stop(target: Target) -> None:
    if target.process is None or target.process.returncode is not None:
        return
    target.process.terminate()
    try:
        await asyncio.wait_for(target.process.wait(), 15)
    except TimeoutError:
        target.process.kill()
        await target.process.wait()


def ensure_prism() -> Path | None:
    """Prism's CLI, installed from the npm registry on first use; None without npm."""
    cli = PRISM_HOME / "node_modules" / ".bin" / "prism"
    if cli.exists():
        return cli
    if shutil.which("npm") is None:
        print("npm is not installed: Prism is left out, ratios are not printed")
        return None
    PRISM_HOME.mkdir(parents=True, exist_ok=True)
    print(f"installing @stoplight/prism-cli@{PRISM_VERSION} into {PRISM_HOME} ...")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", f"@stoplight/prism-cli@{PRISM_VERSION}"],
        cwd=PRISM_HOME,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return cli


# Load.


async def load(
    target: Target, request: bytes, workdir: Path, *, connections: int, **limit: float
) -> dict[str, Any]:
    """Runs bench/loadgen.py on the load core against the target; its JSON result, plus
    the server's CPU seconds per request."""
    request_file = workdir / f"request-{os.getpid()}.bin"
    request_file.write_bytes(request)
    args = [
        "taskset", "-c", LOAD_CPU, sys.executable, str(LOADGEN), "--port", str(target.port),
        "--request-file", str(request_file), "--connections", str(connections),
    ]  # fmt: skip
    args += [f"--{key}={value}" for key, value in limit.items()]
    cpu_before = target.cpu_seconds()
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    output, _ = await process.communicate()
    result: dict[str, Any] = orjson.loads(output)
    used_ms = (target.cpu_seconds() - cpu_before) * 1000
    result["server_cpu_ms"] = used_ms / max(result["requests"], 1)
    bad = {s: n for s, n in result["statuses"].items() if not s.startswith("2")}
    if bad or result["error"]:
        raise BenchError(f"{target.name}: answers {result['statuses']} error {result['error']}")
    return result


# Data for the reads.


async def fill(target: Target, credentials: Credentials, messages: int) -> None:
    """Loads `messages` messages in 10,000-recipient sends plus one 10-message operation, and
    remembers the ids the reads fetch."""
    auth = (credentials.account_sid, credentials.auth_token)
    base = f"http://{HOST}:{target.port}/v1"
    big = send_body(BIG)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=300) as client:
        done = 0
        began = time.perf_counter()
        while done < messages:
            answer = await client.post("/Messages", content=big, headers=headers)
            if answer.status_code != 202:
                raise BenchError(f"fill: {answer.status_code} {answer.text[:300]}")
            target.ids["op10k"] = answer.json()["operationId"]
            done += BIG
        print(f"  [{target.name}] {done:,} messages loaded in {time.perf_counter() - began:.0f} s")
        small = await client.post("/Messages", content=send_body(10), headers=headers)
        target.ids["op10"] = small.json()["operationId"]
        page = (await client.get("/Messages", params={"pageSize": 1})).json()
        target.ids["message"] = page["messages"][0]["id"]


def read_requests(target: Target, auth: str) -> dict[str, bytes]:
    p = target.prefix
    ids = target.ids or {
        "op10": "comms_operation_01h9krwprkeee8fzqspvwy6nq8",
        "op10k": "comms_operation_01h9krwprkeee8fzqspvwy6nq8",
        "message": "comms_message_01h9krwprkeee8fzqspvwy6nq8",
    }
    return {
        "list": raw_request("GET", f"{p}/Messages?pageSize=50", auth),
        "message": raw_request("GET", f"{p}/Messages/{ids['message']}", auth),
        "op10": raw_request("GET", f"{p}/Messages/Operations/{ids['op10']}", auth),
        "op10k": raw_request("GET", f"{p}/Messages/Operations/{ids['op10k']}", auth),
    }


# The run.


@dataclass
class Figures:
    """Every round's value of every (metric, target)."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, metric: str, target: str, value: float) -> None:
        self.values.setdefault((metric, target), []).append(value)


METRICS = [
    ("post1 req/s", "req/s", True),
    ("post1 CPU ms/req", "ms", False),
    ("post10k p50 ms", "ms", False),
    ("post10k p99 ms", "ms", False),
    ("post10k CPU ms", "ms", False),
    ("list req/s", "req/s", True),
    ("list CPU ms/req", "ms", False),
    ("message req/s", "req/s", True),
    ("message CPU ms/req", "ms", False),
    ("op10 req/s", "req/s", True),
    ("op10 CPU ms/req", "ms", False),
    ("op10k req/s", "req/s", True),
    ("op10k CPU ms/req", "ms", False),
    ("startup s", "s", False),
    ("idle RSS MB", "MB", False),
]


async def one_round(
    targets: list[Target], credentials: Credentials, figures: Figures, args: argparse.Namespace
) -> None:
    auth = base64.b64encode(f"{credentials.account_sid}:{credentials.auth_token}".encode())
    token = auth.decode()
    post1 = send_body(1)
    post10k = send_body(BIG)
    for target in targets:
        workdir = target.workdir
        small = raw_request("POST", f"{target.prefix}/Messages", token, post1)
        result = await load(target, small, workdir, connections=CONNECTIONS, seconds=args.seconds)
        figures.add("post1 req/s", target.name, result["per_second"])
        figures.add("post1 CPU ms/req", target.name, result["server_cpu_ms"])
    for target in targets:
        big = raw_request("POST", f"{target.prefix}/Messages", token, post10k)
        await load(target, big, target.workdir, connections=1, count=2)  # warm-up
        result = await load(target, big, target.workdir, connections=1, count=args.big_runs)
        figures.add("post10k p50 ms", target.name, result["p50_ms"])
        figures.add("post10k p99 ms", target.name, result["p99_ms"])
        figures.add("post10k CPU ms", target.name, result["server_cpu_ms"])
    for name in ("list", "message", "op10", "op10k"):
        for target in targets:
            request = read_requests(target, token)[name]
            result = await load(
                target, request, target.workdir, connections=CONNECTIONS, seconds=args.seconds
            )
            figures.add(f"{name} req/s", target.name, result["per_second"])
            figures.add(f"{name} CPU ms/req", target.name, result["server_cpu_ms"])


async def startups(targets: list[Target], figures: Figures, rounds: int) -> None:
    """Fresh starts: seconds to healthy, then RSS after a second of idling."""
    for _ in range(rounds):
        for target in targets:
            await stop(target)
            figures.add("startup s", target.name, await start(target))
            await asyncio.sleep(1.0)
            figures.add("idle RSS MB", target.name, target.rss_mb())


def opencomms_target(kind: str, url: str, workdir: Path, credentials: Credentials) -> Target:
    def command(port: int) -> list[str]:
        return [
            *opencomms_command(), "serve", "--no-worker", "--host", HOST, "--port", str(port),
            "--database-url", url,
        ]  # fmt: skip

    return Target(f"opencomms-{kind}", "/v1", command, server_env(credentials), workdir)


def prism_target(cli: Path, workdir: Path) -> Target:
    def command(port: int) -> list[str]:
        return [str(cli), "mock", str(SPEC), "-h", HOST, "-p", str(port), "-v", "error"]

    return Target("prism", "", command, dict(os.environ), workdir)


@asynccontextmanager
async def targets_running(
    kinds: list[str], credentials: Credentials, workdir: Path
) -> AsyncIterator[list[Target]]:
    targets: list[Target] = []
    cli = ensure_prism()
    if cli is not None:
        targets.append(prism_target(cli, workdir))
    async with AsyncExitStack() as stack:
        for kind in kinds:
            url = await stack.enter_async_context(database(kind, workdir / kind))
            targets.append(opencomms_target(kind, url, workdir / kind, credentials))
        try:
            for target in targets:
                await start(target)
            yield targets
        finally:
            for target in targets:
                await stop(target)


def print_table(figures: Figures, names: list[str]) -> None:
    print("\nmedian [min-max] over rounds; ratio = OpenComms / Prism (req/s: higher is better)")
    header = f"{'figure':<20}" + "".join(f"{n:>30}" for n in names)
    print(header)
    print("-" * len(header))
    for metric, _, _ in METRICS:
        cells = []
        prism = figures.values.get((metric, "prism"))
        for name in names:
            values = figures.values.get((metric, name))
            if not values:
                cells.append(f"{'-':>30}")
                continue
            median = statistics.median(values)
            cell = f"{median:,.2f} [{min(values):,.1f}-{max(values):,.1f}]"
            if prism and name != "prism":
                cell += f" {median / statistics.median(prism):.2f}x"
            cells.append(f"{cell:>30}")
        print(f"{metric:<20}" + "".join(cells))


async def run(args: argparse.Namespace) -> None:
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    credentials = Credentials.new()
    figures = Figures()
    print(load_average())
    with tempfile.TemporaryDirectory(prefix="opencomms-accept-") as temp:
        workdir = Path(temp)
        for kind in kinds:
            (workdir / kind).mkdir()
        async with targets_running(kinds, credentials, workdir) as targets:
            for target in targets:
                if not target.is_prism:
                    await fill(target, credentials, args.messages)
            for number in range(1, args.rounds + 1):
                print(f"round {number} of {args.rounds} ({load_average()})")
                await one_round(targets, credentials, figures, args)
            await startups(targets, figures, args.rounds)
            names = [t.name for t in targets]
    print_table(figures, names)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput figure")
    parser.add_argument("--big-runs", type=int, default=BIG_RUNS, help="timed 10k sends")
    parser.add_argument("--messages", type=int, default=1_000_000, help="rows for the reads")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        asyncio.run(run(args))
    except BenchError as error:
        sys.exit(f"benchmark failed: {error}")


if __name__ == "__main__":
    main()
