"""CPU per request of the hot routes, in process: no HTTP server, no load generator.

Calls the ASGI application directly, one request at a time, and divides the process's CPU
time (every thread's: SQLite reads run on threads) by the requests made. On a loaded machine
this is the figure that still means something; bench/accept.py measures the real thing.

    .venv/bin/python bench/inprocess.py --database sqlite --sends 20 --requests 2000
    .venv/bin/python bench/inprocess.py --database postgresql --profile list   # cProfile
"""

import argparse
import asyncio
import base64
import cProfile
import gc
import pstats
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from opencomms.api.app import create_app
from opencomms.cli import runtime
from opencomms.clock import now_ms
from opencomms.config import Settings
from opencomms.store import accounts, inventory, migrate
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database, open_database

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "bench-inprocess-key"


def send_body(count: int) -> bytes:
    to = [
        {
            "address": f"+1415555{i % 10_000:04d}",
            "channel": "PHONE",
            "variables": {"first": f"F{i}", "last": f"L{i}", "code": f"{i:06d}"},
        }
        for i in range(count)
    ]
    tags = {"campaign": "spring", "team": "growth", "region": "us", "priority": "high", "b": "1"}
    text = "Hi {{ first }} {{ last }}, your code is {{ code }}"
    return orjson.dumps({"to": to, "content": {"text": text}, "tags": tags})


class Caller:
    """Calls the app with raw ASGI messages; returns (status, body)."""

    def __init__(self, app: Any, auth: str) -> None:
        self.app = app
        self.headers = [(b"authorization", f"Basic {auth}".encode()), (b"host", b"testserver")]

    async def __call__(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        headers = list(self.headers)
        if body:
            headers += [(b"content-type", b"application/json")]
            headers += [(b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query.encode(), "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("testserver", 80),
        }  # fmt: skip
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def open_db(kind: str, folder: Path) -> tuple[Database, str | None]:
    if kind == "sqlite":
        db = open_database(f"sqlite:///{folder / 'bench.db'}")
        await migrate.upgrade(db)
        return db, None
    name = "opencomms_inproc_" + secrets.token_hex(4)
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    db = open_database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
    await migrate.upgrade(db)
    return db, name


async def drop_pg(name: str | None) -> None:
    if name is None:
        return
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def measure(call: Caller, label: str, target: str, requests: int, body: bytes = b"") -> None:
    status, answer = await call("POST" if body else "GET", target, body)
    assert status < 300, (status, answer[:300])
    began_cpu, began = time.process_time(), time.perf_counter()
    for _ in range(requests):
        await call("POST" if body else "GET", target, body)
    cpu = (time.process_time() - began_cpu) / requests * 1000
    wall = (time.perf_counter() - began) / requests * 1000
    print(f"  {label:<10} {cpu:8.3f} ms CPU/req  {wall:8.3f} ms wall/req")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as temp:
        db, pg_name = await open_db(args.database, Path(temp))
        try:
            await bench(db, args)
        finally:
            await db.dispose()
            await drop_pg(pg_name)


async def bench(db: Database, args: argparse.Namespace) -> None:
    box = SecretBox(SECRET)
    async with db.write() as conn:
        created = await accounts.create_account(conn, box)
        await inventory.give_defaults(conn, created.sid, now_ms())
    app = create_app(db, Settings(secret_key=SECRET))
    if args.gc:  # as `opencomms serve` does (older versions only froze)
        getattr(runtime, "tune_gc", gc.freeze)()
    call = Caller(app, base64.b64encode(f"{created.sid}:{created.secret}".encode()).decode())
    big = send_body(10_000)
    op10k = ""
    for _ in range(args.sends):
        status, answer = await call("POST", "/v1/Messages", big)
        assert status == 202, answer[:300]
        op10k = orjson.loads(answer)["operationId"]
    op10 = orjson.loads((await call("POST", "/v1/Messages", send_body(10)))[1])["operationId"]
    page = orjson.loads((await call("GET", "/v1/Messages?pageSize=1"))[1])
    message = page["messages"][0]["id"]
    targets = {
        "list": f"/v1/Messages?pageSize={args.page_size}",
        "message": f"/v1/Messages/{message}",
        "op10": f"/v1/Messages/Operations/{op10}",
        "op10k": f"/v1/Messages/Operations/{op10k}",
    }
    print(f"{args.database}: {args.sends * 10_000 + 10:,} messages")
    if args.profile:
        await profile(call, args, targets, big)
        return
    await measure(call, "post1", "/v1/Messages", args.requests, send_body(1))
    for label, target in targets.items():
        await measure(call, label, target, args.requests)
    await measure(call, "post10k", "/v1/Messages", max(args.requests // 200, 3), big)


async def profile(
    call: Caller, args: argparse.Namespace, targets: dict[str, str], big: bytes
) -> None:
    bodies = {"post1": send_body(1), "post10k": big}
    target = targets.get(args.profile, "/v1/Messages")
    body = bodies.get(args.profile, b"")
    count = 10 if args.profile == "post10k" else args.requests
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        await call("POST" if body else "GET", target, body)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sends", type=int, default=10, help="10,000-recipient sends to load")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument(
        "--gc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tune the collector as `opencomms serve` does",
    )
    parser.add_argument(
        "--profile", choices=("post1", "post10k", "list", "message", "op10", "op10k")
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
