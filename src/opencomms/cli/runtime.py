"""What the commands do, as async functions the tests can call too."""

import asyncio
import contextlib
import gc
import logging
import os
from dataclasses import dataclass

from rich.console import Console

from opencomms.api.app import create_app
from opencomms.cli.server import ConnectionLimits, GracefulServer, server_config
from opencomms.config import Settings, server_key
from opencomms.store import accounts
from opencomms.store import migrate as migrations
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database, open_database

log = logging.getLogger("opencomms.serve")


class SchemaOutOfDate(RuntimeError):
    """PostgreSQL schemas are migrated deliberately, with `opencomms migrate`."""


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    database_url: str
    worker: bool
    public_url: str | None


async def open_ready(database_url: str) -> Database:
    """Opens the database; SQLite is migrated on start, PostgreSQL must already be."""
    db = open_database(database_url)
    if db.is_sqlite:
        await migrations.upgrade(db)
    elif not await migrations.is_current(db):
        await db.dispose()
        raise SchemaOutOfDate("the schema is not up to date: run `opencomms migrate` first")
    return db


async def ensure_account(db: Database, box: SecretBox, console: Console) -> None:
    """Makes the environment's account exist, or creates a first one on an empty database."""
    sid = os.environ.get("OPENCOMMS_ACCOUNT_SID")
    token = os.environ.get("OPENCOMMS_AUTH_TOKEN")
    async with db.write() as conn:
        if sid and token:
            if await accounts.account_exists(conn, sid):
                await accounts.set_auth_token(conn, box, sid, token)
            else:
                await accounts.create_account(conn, box, sid=sid, auth_token=token)
            return
        if await accounts.count_accounts(conn) == 0:
            created = await accounts.create_account(conn, box)
            console.print("Created the first account; its auth token is shown only now:")
            console.print(f"  OPENCOMMS_ACCOUNT_SID={created.sid}")
            console.print(f"  OPENCOMMS_AUTH_TOKEN={created.secret}")


async def serve(options: ServeOptions, console: Console) -> None:
    db = await open_ready(options.database_url)
    settings = Settings(
        database_url=options.database_url,
        secret_key=server_key(options.database_url),
        public_url=options.public_url,
    )
    await ensure_account(db, SecretBox(settings.secret_key), console)
    config = server_config(
        create_app(db, settings), options.host, options.port, ConnectionLimits.from_env()
    )
    stop = asyncio.Event()
    server = GracefulServer(config, on_stop=stop.set)
    # Startup objects live as long as the process: keep them out of every GC pass, so a
    # 10,000-recipient request does not pay for scanning them.
    gc.freeze()
    worker = asyncio.create_task(_work(db, stop)) if options.worker else None
    try:
        await server.serve()
    finally:
        stop.set()
        await _drain(worker)
        await db.dispose()


async def _drain(worker: "asyncio.Task[None] | None") -> None:
    """Lets the worker finish the hand-offs in hand, for at most the grace period
    (OPENCOMMS_SHUTDOWN_GRACE seconds, default 30); past it, the worker is cancelled and
    its leases return to the queue when they expire."""
    if worker is None:
        return
    grace = float(os.environ.get("OPENCOMMS_SHUTDOWN_GRACE") or 30)
    try:
        await asyncio.wait_for(asyncio.shield(worker), grace)
    except TimeoutError:
        log.warning("worker still busy after %.0fs of grace: stopping it", grace)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def _work(db: Database, stop: asyncio.Event) -> None:
    from opencomms.dispatch import WorkerConfig, run_worker

    await run_worker(db, WorkerConfig.from_env(), stop)


async def work(database_url: str, stop: asyncio.Event) -> None:
    db = await open_ready(database_url)
    try:
        await _work(db, stop)
    finally:
        await db.dispose()


async def migrate(database_url: str) -> None:
    db = open_database(database_url)
    try:
        await migrations.upgrade(db)
    finally:
        await db.dispose()


async def create_account(database_url: str, friendly_name: str) -> NewCredential:
    db = await open_ready(database_url)
    box = SecretBox(server_key(database_url))
    try:
        async with db.write() as conn:
            return await accounts.create_account(conn, box, friendly_name=friendly_name)
    finally:
        await db.dispose()


async def create_key(
    database_url: str, account_sid: str, friendly_name: str
) -> NewCredential | None:
    db = await open_ready(database_url)
    try:
        async with db.write() as conn:
            if not await accounts.account_exists(conn, account_sid):
                return None
            return await accounts.create_api_key(conn, account_sid, friendly_name)
    finally:
        await db.dispose()
