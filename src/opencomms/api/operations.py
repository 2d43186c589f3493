"""Message Operations: list, fetch and cancel."""

from typing import Any

from fastapi import APIRouter

from opencomms.api import filters, pagination, presenters, wire
from opencomms.api.deps import Account, BaseUrl, State
from opencomms.api.messages import accepted
from opencomms.api.responses import JSONResponse
from opencomms.clock import now_ms
from opencomms.domain.records import OperationKind
from opencomms.services import operations

router = APIRouter(tags=["Messages"])


@router.get("/Messages/Operations")
async def list_operations(
    account: Account,
    app: State,
    page: pagination.Paging,
    startDate: str | None = None,
    endDate: str | None = None,
    status: str | None = None,
) -> Any:
    """List Message Operations, newest first, with stats derived from their messages."""
    operation_filter = filters.operation_filter(startDate, endDate, status)
    records, stats = await operations.list_operations(
        app.db, account, operation_filter, before_id=page.before, limit=page.limit,
        shown=page.size, kind=OperationKind.MESSAGES,
    )  # fmt: skip
    return page.answer(
        records,
        lambda shown, links: wire.OperationList(
            operations=[presenters.operation(r, stats[r.id]) for r in shown], pagination=links
        ),
    )


@router.get("/Messages/Operations/{operationId}")
async def fetch_operation(operationId: str, account: Account, app: State) -> Any:
    """Fetch a Message Operation with its stats."""
    record, stats = await operations.get_operation(
        app.db, account, operationId, OperationKind.MESSAGES
    )
    return JSONResponse(wire.dump(presenters.operation(record, stats)))


@router.post("/Messages/Operations/{operationId}/Cancel", status_code=202)
async def cancel(operationId: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Cancel an Operation: messages not yet handed to a channel become CANCELED."""
    async with app.db.write() as conn:
        await operations.cancel(conn, account, operationId, now_ms(), OperationKind.MESSAGES)
    return accepted(operationId, base, f"{base}/Messages?operationId={operationId}")
