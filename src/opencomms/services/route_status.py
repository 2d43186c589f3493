"""Each route's state as the running workers report it, for `/readyz` and `opencomms status`.

The worker processes hold the routes, not the API process: each writes its view to
`route_states` (dispatch/worker.py, every change and every 10 s), and this reads the fresh
rows of every worker. A route is `up`, `down` (every reporting worker) or `degraded` (some),
with the reason in fixed words (channels.base.ROUTE_DOWN_REASONS) and since when.
"""

from typing import Any

from opencomms.clock import rfc3339
from opencomms.store import route_states
from opencomms.store.db import Database
from opencomms.store.route_states import RouteState

# Workers report every 10 s; one silent for this long is gone.
WORKER_SILENT_MS = 30_000
NO_WORKER = "No worker is running: messages are accepted and wait until one starts"


async def delivery(db: Database, now: int) -> dict[str, Any]:
    """{"workers": n, "routes": [...]} (and a note when no worker reports)."""
    async with db.read() as conn:
        states = await route_states.fresh(conn, now - WORKER_SILENT_MS)
    workers = {s.worker_id for s in states}
    if not workers:
        return {"workers": 0, "routes": [], "note": NO_WORKER}
    by_route: dict[str, list[RouteState]] = {}
    for state in states:
        by_route.setdefault(state.route, []).append(state)
    return {"workers": len(workers), "routes": [_route(n, s) for n, s in by_route.items()]}


def _route(name: str, states: list[RouteState]) -> dict[str, Any]:
    down = [s for s in states if not s.up]
    if not down:
        return {"name": name, "state": "up", "since": rfc3339(max(s.since for s in states))}
    return {
        "name": name,
        "state": "degraded" if len(down) < len(states) else "down",
        "reason": ", ".join(sorted({s.reason for s in down})),
        "since": rfc3339(min(s.since for s in down)),
    }
