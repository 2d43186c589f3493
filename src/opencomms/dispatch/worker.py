"""The worker process's loop: batches while there is work, then waits to be woken."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

from opencomms.channels import registry
from opencomms.channels.registry import RouteConfig
from opencomms.dispatch.config import WorkerConfig
from opencomms.dispatch.dispatcher import Dispatcher
from opencomms.dispatch.wakeup import PgListener, first_of, listen_dsn
from opencomms.store.db import Database

log = logging.getLogger("opencomms.dispatch")

_PRUNE_EVERY = 600.0  # seconds between sweeps of receipts that never found their attempt


def default_dispatcher(
    db: Database, config: WorkerConfig, routes: Sequence[RouteConfig] = (registry.sandbox_route(),)
) -> Dispatcher:
    """A dispatcher with a channel for every configured route (by default, the sandbox)."""
    return Dispatcher(db, registry.build_routes(routes), config)


@contextlib.asynccontextmanager
async def _wakeups(db: Database) -> AsyncIterator[list[asyncio.Event]]:
    if db.is_sqlite:
        yield []
        return
    async with PgListener(listen_dsn(db)) as listener:
        yield [listener.event]


async def run_worker(
    db: Database,
    config: WorkerConfig,
    stop: asyncio.Event,
    routes: Sequence[RouteConfig] = (registry.sandbox_route(),),
) -> None:
    """Dispatches until `stop` is set; the batch in hand is finished before returning."""
    log.info("worker %s started", config.worker_id)
    async with default_dispatcher(db, config, routes) as dispatcher, _wakeups(db) as wakeups:
        await serve(dispatcher, wakeups, stop)
    log.info("worker %s stopped", config.worker_id)


class Health:
    """The lanes' shared view of the database: after a failure every lane waits, doubling
    the wait up to `cap`, and the change is logged once each way, not once per try (a
    PostgreSQL restart would otherwise log tens of lines a second: receipts put back after
    a failed write wake the lanes again at once)."""

    def __init__(self, base: float, cap: float = 30.0) -> None:
        self.base = max(base, 0.05)
        self.cap = cap
        self.failures = 0

    def failed(self) -> float:
        """Records a failure; returns how long to wait before the next try."""
        self.failures += 1
        if self.failures == 1:
            log.exception("dispatch failed; retrying with backoff until the database answers")
        else:
            log.debug("dispatch failed again (%d in a row)", self.failures, exc_info=True)
        return min(self.cap, self.base * 2.0 ** min(self.failures - 1, 20))

    def succeeded(self) -> None:
        if self.failures:
            log.warning("dispatch recovered after %d failed tries", self.failures)
            self.failures = 0


async def serve(dispatcher: Dispatcher, wakeups: list[asyncio.Event], stop: asyncio.Event) -> None:
    """Runs the configured number of lanes until `stop`; each finishes its batch first."""
    health = Health(dispatcher.config.poll_interval)
    async with asyncio.TaskGroup() as lanes:
        for lane in range(max(dispatcher.config.lanes, 1)):
            lanes.create_task(_lane(dispatcher, wakeups, stop, health, prunes=lane == 0))


async def _lane(
    dispatcher: Dispatcher,
    wakeups: list[asyncio.Event],
    stop: asyncio.Event,
    health: Health,
    *,
    prunes: bool,
) -> None:
    config = dispatcher.config
    events = [stop, dispatcher.receipts.arrived, *wakeups]
    next_prune = time.monotonic()
    while not stop.is_set():
        for event in wakeups:
            event.clear()
        try:
            if prunes and time.monotonic() >= next_prune:
                await dispatcher.prune_receipts()
                next_prune = time.monotonic() + _PRUNE_EVERY
            handled = await dispatcher.run_once()
        except Exception:
            # The database may be restarting; claimed messages return when their lease ends.
            # Only `stop` cuts the wait short: the other events fire again at once.
            await first_of([stop], health.failed())
            continue
        health.succeeded()
        if handled:
            continue  # there may be more right away
        await first_of(events, config.poll_interval)
