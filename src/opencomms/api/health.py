"""Liveness and readiness, without credentials."""

import logging
from typing import Any

from fastapi import APIRouter

from opencomms.api.deps import State
from opencomms.api.errors import RETRY_AFTER_SECONDS
from opencomms.api.responses import JSONResponse, one_error
from opencomms.clock import now_ms, rfc3339
from opencomms.domain import errors
from opencomms.store import route_states
from opencomms.store.db import Database, write_refusal

log = logging.getLogger("opencomms.api")

router = APIRouter(tags=["Health"])


@router.get("/healthz")
async def healthz() -> Any:
    """The process is up."""
    return JSONResponse({"status": "ok"})


_NOT_READY = {
    "unreachable": "The database is not reachable",
    "read-only": "The database does not accept writes (read-only)",
    "disk full": "The database's disk is (nearly) full",
}


@router.get("/readyz")
async def readyz(app: State) -> Any:
    """Ready to take writes: the database answers and would commit a write now.

    The reason is one of a few fixed sentences; the driver's own error (hosts, paths, SQL)
    goes to the server log only, never to an anonymous caller.
    """
    refusal = await write_refusal(app.db)
    if refusal is not None:
        log.warning("not ready: %s", refusal)
        response = one_error(503, errors.SERVICE_UNAVAILABLE, _NOT_READY[refusal])
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JSONResponse({"status": "ready", **await _delivery(app.db)})


# Workers report every 10 s (dispatch/worker.py); one silent for this long is gone.
_WORKER_SILENT_MS = 30_000
_NO_WORKER = "No worker is running: messages are accepted and wait until one starts"


async def _delivery(db: Database) -> dict[str, Any]:
    """Each route's state as the running workers report it (they hold the routes, not this
    process): `up`, `down` (every worker), or `degraded` (some workers), with the reason in
    fixed words and since when. A route down does not make the server unready: its
    messages are accepted and wait for it."""
    try:
        async with db.read() as conn:
            states = await route_states.fresh(conn, now_ms() - _WORKER_SILENT_MS)
    except Exception:
        log.warning("route states could not be read", exc_info=True)
        return {}
    workers = {s.worker_id for s in states}
    if not workers:
        return {"workers": 0, "routes": [], "note": _NO_WORKER}
    by_route: dict[str, list[route_states.RouteState]] = {}
    for state in states:
        by_route.setdefault(state.route, []).append(state)
    return {"workers": len(workers), "routes": [_route(n, s) for n, s in by_route.items()]}


def _route(name: str, states: list[route_states.RouteState]) -> dict[str, Any]:
    down = [s for s in states if not s.up]
    if not down:
        return {"name": name, "state": "up", "since": rfc3339(max(s.since for s in states))}
    reasons = sorted({s.reason for s in down})
    return {
        "name": name,
        "state": "degraded" if len(down) < len(states) else "down",
        "reason": ", ".join(reasons),
        "since": rfc3339(min(s.since for s in down)),
    }
