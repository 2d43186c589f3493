"""Liveness and readiness, without credentials."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from opencomms.api.deps import State
from opencomms.api.responses import JSONResponse, one_error
from opencomms.domain import errors

router = APIRouter(tags=["Health"])


@router.get("/healthz")
async def healthz() -> Any:
    """The process is up."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(app: State) -> Any:
    """The database answers."""
    try:
        async with app.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach the database means not ready
        message = f"The database is not reachable: {str(error)[:200]}"
        return one_error(503, errors.SERVICE_UNAVAILABLE, message)
    return JSONResponse({"status": "ready"})
