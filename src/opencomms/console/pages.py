"""Operations and messages: the same store and service functions as the API, shown in the
API's own wire shapes, so what a page says is what the API answers."""

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from opencomms.api import filters, pagination, presenters, wire
from opencomms.api.responses import JSONResponse
from opencomms.clock import now_ms
from opencomms.console import auth
from opencomms.console.web import (
    FINAL_OPERATIONS,
    MESSAGE_FILTERS,
    PAGE_SIZE,
    api_base,
    checked_form,
    page,
    signed_in,
    state,
)
from opencomms.domain.errors import NotFound, Problem, ValidationFailed
from opencomms.domain.records import MessageFilter, OperationFilter
from opencomms.services import operations
from opencomms.services.messages import message_detail
from opencomms.store import reads

router = APIRouter(prefix="/console", include_in_schema=False)


# -- operations -------------------------------------------------------------------------------


async def _operations(
    request: Request, account_sid: str, ids: list[str] | None, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    before = pagination.decode(token)
    async with state(request).db.read() as conn:
        if ids is None:
            records = await reads.list_operations(
                conn, account_sid, OperationFilter(), before_id=before, limit=PAGE_SIZE + 1
            )
        else:
            found = [await reads.get_operation(conn, account_sid, op_id) for op_id in ids]
            records = [r for r in found if r is not None]
        shown = records[:PAGE_SIZE]
        stats = await reads.operation_stats(conn, [r.id for r in shown])
    _, next_token = pagination.page(before, [r.id for r in records], PAGE_SIZE)
    return [wire.dump(presenters.operation(r, stats[r.id])) for r in shown], next_token


@router.get("/operations")
async def operations_page(request: Request, pageToken: str | None = None) -> Response:
    session = await signed_in(request)
    shown, next_token = await _operations(request, session.account_sid, None, pageToken)
    live = [o["id"] for o in shown if o["status"] not in FINAL_OPERATIONS]
    return page(
        request, "operations.html", session, operations=shown, next_token=next_token, live=live
    )


@router.get("/api/operations")
async def operations_progress(request: Request, ids: str = "") -> Response:
    """Live progress for the operations page's script: each operation as the API shows it."""
    session = await auth.current_session(request)
    if session is None:
        return JSONResponse({"signedIn": False}, status_code=401)
    wanted = [i for i in ids.split(",") if i][:PAGE_SIZE]
    shown, _ = await _operations(request, session.account_sid, wanted, None)
    response = JSONResponse({"operations": shown})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/operations/{operation_id}")
async def operation_page(request: Request, operation_id: str) -> Response:
    session = await signed_in(request)
    shown, _ = await _operations(request, session.account_sid, [operation_id], None)
    if not shown:
        return page(request, "missing.html", session, 404, what=f"Operation {operation_id}")
    operation = shown[0]
    async with state(request).db.read() as conn:
        records = await reads.list_messages(
            conn,
            session.account_sid,
            MessageFilter(operation_id=operation_id),
            before_id=None,
            limit=PAGE_SIZE,
        )
    messages = [wire.dump(presenters.message_metadata(r, api_base(request))) for r in records]
    live = [] if operation["status"] in FINAL_OPERATIONS else [operation_id]
    return page(
        request, "operation.html", session, operation=operation, messages=messages, live=live
    )


@router.post("/operations/{operation_id}/cancel")
async def cancel_page(request: Request, operation_id: str) -> Response:
    session = await signed_in(request)
    await checked_form(request, session)
    try:
        async with state(request).db.write() as conn:
            await operations.cancel(conn, session.account_sid, operation_id, now_ms())
    except NotFound:
        return page(request, "missing.html", session, 404, what=f"Operation {operation_id}")
    return RedirectResponse(f"/console/operations/{quote(operation_id)}", status_code=303)


# -- messages ---------------------------------------------------------------------------------


@router.get("/messages")
async def messages_page(request: Request) -> Response:
    session = await signed_in(request)
    query = {k: v for k in MESSAGE_FILTERS if (v := request.query_params.get(k))}
    problems: list[Problem] = []
    messages: list[dict[str, Any]] = []
    next_token = None
    try:
        wanted = filters.message_filter(
            operation_id=query.get("operationId"),
            session_id=query.get("sessionId"),
            start=query.get("startDate"),
            end=query.get("endDate"),
            profile=None,
            channel=query.get("channel"),
            status=query.get("status"),
            tags=query.get("tags"),
        )
        before = pagination.decode(request.query_params.get("pageToken"))
        async with state(request).db.read() as conn:
            records = await reads.list_messages(
                conn, session.account_sid, wanted, before_id=before, limit=PAGE_SIZE + 1
            )
        _, next_token = pagination.page(before, [r.id for r in records], PAGE_SIZE)
        base = api_base(request)
        messages = [wire.dump(presenters.message_metadata(r, base)) for r in records[:PAGE_SIZE]]
    except ValidationFailed as failed:
        problems = failed.problems
    return page(
        request,
        "messages.html",
        session,
        status_code=400 if problems else 200,
        messages=messages,
        query=query,
        problems=problems,
        next_token=next_token,
        statuses=filters.MESSAGE_STATUSES,
        channels=filters.CHANNELS,
    )


@router.get("/messages/{message_id}")
async def message_page(request: Request, message_id: str) -> Response:
    session = await signed_in(request)
    try:
        async with state(request).db.read() as conn:
            detail = await message_detail(conn, session.account_sid, message_id)
    except NotFound:
        return page(request, "missing.html", session, 404, what=f"Message {message_id}")
    message = presenters.message_from_parts(
        detail.record, detail.content, detail.attempts, api_base(request)
    )
    return page(request, "message.html", session, message=wire.dump(message))


@router.get("/seek/{identifier}")
async def seek_page(request: Request, identifier: str) -> Response:
    """The message whose attempt a channel gave `identifier` (the API's Seek, for people)."""
    session = await signed_in(request)
    async with state(request).db.read() as conn:
        message_id = await reads.find_by_external_id(conn, session.account_sid, identifier)
    if message_id is None:
        return page(request, "missing.html", session, 404, what=f"Identifier {identifier}")
    return RedirectResponse(f"/console/messages/{quote(message_id)}", status_code=303)
