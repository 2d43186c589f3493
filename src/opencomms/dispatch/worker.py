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
from opencomms.dispatch.routes import route_view
from opencomms.dispatch.wakeup import PgListener, first_of, listen_dsn
from opencomms.store import route_states
from opencomms.store.db import Database

log = logging.getLogger("opencomms.dispatch")

_PRUNE_EVERY = 600.0  # seconds between sweeps of receipts that never found their attempt
_REPORT_EVERY = 10.0  # seconds between two reports of the route states, when nothing changed
_FORGET_AFTER = 24 * 3600.0  # a worker's route states with no report for this long are removed


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
    """Runs the configured number of lanes until `stop`. Then nothing more is claimed, the
    hand-offs already with a channel finish, and everything else in hand goes back to the
    queue at once (Dispatcher.stop)."""
    health = Health(dispatcher.config.poll_interval)
    async with asyncio.TaskGroup() as lanes:
        lanes.create_task(_stop_on(stop, dispatcher))
        lanes.create_task(_report_routes(dispatcher, stop))
        for lane in range(max(dispatcher.config.lanes, 1)):
            lanes.create_task(_lane(dispatcher, wakeups, stop, health, prunes=lane == 0))


async def _stop_on(stop: asyncio.Event, dispatcher: Dispatcher) -> None:
    await stop.wait()
    dispatcher.stop()


async def _report_routes(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """Writes this worker's route states for /readyz: on every change (looked at every
    second) and every `_REPORT_EVERY` seconds; a stopping worker removes its rows."""
    worker_id = dispatcher.config.worker_id
    reported: tuple[object, ...] | None = None
    next_report = 0.0
    while not stop.is_set():
        now = dispatcher.clock()
        views = route_view(dispatcher.routes, dispatcher.channels, now)
        seen = tuple((v.route, v.up, v.reason) for v in views)
        if seen != reported or time.monotonic() >= next_report:
            try:
                async with dispatcher.db.write() as conn:
                    await route_states.report(
                        conn,
                        [
                            route_states.RouteState(
                                worker_id, v.route, v.up, v.reason, v.since, now
                            )
                            for v in views
                        ],
                    )
                reported, next_report = seen, time.monotonic() + _REPORT_EVERY
            except Exception:
                log.debug("route states not written", exc_info=True)
        await first_of([stop], 1.0)
    with contextlib.suppress(Exception):
        async with dispatcher.db.write() as conn:
            await route_states.forget(
                conn, worker_id, dispatcher.clock() - int(_FORGET_AFTER * 1000)
            )


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
