"""Message Operations: list, fetch and cancel."""

from typing import Any

from fastapi import APIRouter

from opencomms.api import filters, pagination, presenters, wire
from opencomms.api.deps import Account, BaseUrl, State
from opencomms.api.messages import accepted
from opencomms.api.responses import JSONResponse
from opencomms.clock import now_ms
from opencomms.domain.errors import NotFound
from opencomms.services import operations
from opencomms.store import reads

router = APIRouter(tags=["Messages"])


@router.get("/Messages/Operations")
async def list_operations(
    account: Account,
    app: State,
    startDate: str | None = None,
    endDate: str | None = None,
    status: str | None = None,
    pageToken: str | None = None,
    pageSize: str | None = None,
) -> Any:
    """List Message Operations, newest first, with stats derived from their messages."""
    operation_filter = filters.operation_filter(startDate, endDate, status)
    size = filters.page_size(pageSize)
    before = pagination.decode(pageToken)
    async with app.db.read() as conn:
        records = await reads.list_operations(
            conn, account, operation_filter, before_id=before, limit=size + 1
        )
        stats = await reads.operation_stats(conn, [r.id for r in records[:size]])
    self_token, next_token = pagination.page(before, [r.id for r in records], size)
    body = wire.OperationList(
        operations=[presenters.operation(r, stats[r.id]) for r in records[:size]],
        pagination=wire.Pagination(next=next_token, self_=self_token),
    )
    return JSONResponse(wire.dump(body))


@router.get("/Messages/Operations/{operationId}")
async def fetch_operation(operationId: str, account: Account, app: State) -> Any:
    """Fetch a Message Operation with its stats."""
    async with app.db.read() as conn:
        record = await reads.get_operation(conn, account, operationId)
        if record is None:
            raise NotFound(f"Operation {operationId}")
        stats = await reads.operation_stats(conn, [operationId])
    return JSONResponse(wire.dump(presenters.operation(record, stats[operationId])))


@router.post("/Messages/Operations/{operationId}/Cancel", status_code=202)
async def cancel(operationId: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Cancel an Operation: messages not yet handed to a channel become CANCELED."""
    async with app.db.write() as conn:
        await operations.cancel(conn, account, operationId, now_ms())
    return accepted(operationId, base, f"{base}/Messages?operationId={operationId}")
