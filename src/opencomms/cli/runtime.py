"""What the commands do, as async functions the tests can call too. Each takes the Settings
built once by the command line (opencomms.config.load_settings)."""

import asyncio
import contextlib
import gc
import logging
import os

from rich.console import Console

from opencomms.api.app import create_app
from opencomms.cli.server import ConnectionLimits, GracefulServer, server_config
from opencomms.clock import now_ms
from opencomms.config import Settings, with_key
from opencomms.domain.senders import SenderRecord
from opencomms.store import accounts, inventory
from opencomms.store import migrate as migrations
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database, open_database

log = logging.getLogger("opencomms.serve")


class SchemaOutOfDate(RuntimeError):
    """PostgreSQL schemas are migrated deliberately, with `opencomms migrate`."""


async def open_ready(database_url: str) -> Database:
    """Opens the database; SQLite is migrated on start, PostgreSQL must already be."""
    db = open_database(database_url)
    if db.is_sqlite:
        await migrations.upgrade(db)
    elif not await migrations.is_current(db):
        await db.dispose()
        raise SchemaOutOfDate("the schema is not up to date: run `opencomms migrate` first")
    return db


async def ensure_account(
    db: Database, box: SecretBox, settings: Settings, console: Console
) -> None:
    """Makes the configured account exist, or creates a first one on an empty database."""
    sid, token = settings.account_sid, settings.auth_token
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


async def sync_senders(db: Database, settings: Settings) -> list[SenderRecord]:
    """The declared senders (or every account's defaults) made current in the database."""
    async with db.write() as conn:
        return await inventory.sync(
            conn, settings.senders, now_ms(), configured_account=settings.account_sid
        )


async def serve(settings: Settings, console: Console, *, worker: bool = True) -> None:
    settings = with_key(settings)
    db = await open_ready(settings.database_url)
    await ensure_account(db, SecretBox(settings.secret_key), settings, console)
    await sync_senders(db, settings)
    config = server_config(
        create_app(db, settings), settings.host, settings.port, ConnectionLimits.from_env()
    )
    stop = asyncio.Event()
    server = GracefulServer(config, on_stop=stop.set)
    tune_gc()
    task = asyncio.create_task(work_on(db, settings, stop)) if worker else None
    try:
        await server.serve()
    finally:
        stop.set()
        await _drain(task)
        await db.dispose()


# Young-generation collections every 200,000 net allocations instead of 700: a
# 10,000-recipient send allocates hundreds of thousands of objects that live until its
# answer (its body, its rows), which the default ran some 90 collections over, rescanning
# them each time (10-15 ms of its latency); at 50,000 one collection a send remained (3 ms),
# at 200,000 none. What requests allocate is almost all acyclic and freed by reference
# counting; the rare cycle waits a little longer.
GC_THRESHOLDS = (200_000, 20, 100)


def tune_gc() -> None:
    """For a serving process, once its startup is done."""
    # Startup objects live as long as the process: keep them out of every GC pass.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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


async def work_on(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """The dispatch worker and webhook delivery on an open database, until `stop` is set."""
    from opencomms.dispatch import run_worker

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(_deliver_events(db, settings, stop))
        await run_worker(db, settings.worker, stop, settings.routes)


async def _deliver_events(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """events: webhook delivery runs beside the dispatcher in every worker process."""
    from opencomms.events import delivery

    events = settings.events
    config = delivery.DeliveryConfig.from_env(
        with_key(settings).secret_key,
        allowed_networks=tuple(str(n) for n in events.allowed_networks),
        retention_days=events.retention_days,
        retry_hours=events.retry_hours,
        attempt_timeout_seconds=events.attempt_timeout_seconds,
        batch_max=events.batch_max,
        public_url=settings.public_url,
    )
    await delivery.run(db, config, stop)


async def work(settings: Settings, stop: asyncio.Event) -> None:
    db = await open_ready(settings.database_url)
    try:
        await sync_senders(db, settings)
        task = asyncio.create_task(work_on(db, settings, stop))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if task.done():
            await task  # it ended by itself: raise what it raised
        else:
            await _drain(task)  # stopped: the same grace period as `serve`
    finally:
        await db.dispose()


async def migrate(settings: Settings) -> None:
    db = open_database(settings.database_url)
    try:
        await migrations.upgrade(db)
    finally:
        await db.dispose()


async def create_account(settings: Settings, friendly_name: str) -> NewCredential:
    settings = with_key(settings)
    db = await open_ready(settings.database_url)
    box = SecretBox(settings.secret_key)
    try:
        async with db.write() as conn:
            created = await accounts.create_account(conn, box, friendly_name=friendly_name)
            if not settings.senders:
                await inventory.give_defaults(conn, created.sid, now_ms())
            return created
    finally:
        await db.dispose()


async def create_key(
    settings: Settings, account_sid: str, friendly_name: str
) -> NewCredential | None:
    db = await open_ready(settings.database_url)
    try:
        async with db.write() as conn:
            if not await accounts.account_exists(conn, account_sid):
                return None
            return await accounts.create_api_key(conn, account_sid, friendly_name)
    finally:
        await db.dispose()


async def list_senders(settings: Settings) -> list[SenderRecord]:
    db = await open_ready(settings.database_url)
    try:
        async with db.read() as conn:
            return await inventory.list_all(conn)
    finally:
        await db.dispose()
