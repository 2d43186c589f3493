"""Liveness and readiness, without credentials."""

import logging
from typing import Any

from fastapi import APIRouter

from opencomms.api.deps import State
from opencomms.api.errors import RETRY_AFTER_SECONDS
from opencomms.api.responses import JSONResponse, one_error
from opencomms.clock import now_ms
from opencomms.domain import errors
from opencomms.services import route_status
from opencomms.store.db import write_refusal

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
    "no resources": "The database cannot take writes now",
}


@router.get("/readyz")
async def readyz(app: State) -> Any:
    """Ready to take writes: the database answers and commits a write now (on PostgreSQL
    one that allocates disk space, so a full disk shows; store/db.write_refusal).

    The reason is one of a few fixed sentences; the driver's own error (hosts, paths, SQL)
    goes to the server log only, never to an anonymous caller.
    """
    refusal = await write_refusal(app.db)
    if refusal is not None:
        log.warning("not ready: %s", refusal)
        response = one_error(503, errors.SERVICE_UNAVAILABLE, _NOT_READY[refusal])
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    try:
        delivery = await route_status.delivery(app.db, now_ms())
    except Exception:
        log.warning("route states could not be read", exc_info=True)
        delivery = {}
    return JSONResponse({"status": "ready", **delivery})
