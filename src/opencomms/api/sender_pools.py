"""The SenderPools resource: pools of the account's senders, their members, their operations.

Every change is done before the 202 (see services/sender_pools.py). An add-senders operation
is served at /SenderPools/Operations/{id}: the spec's example points at a
/SenderPools/{id}/Senders/Operations path that the spec itself never declares.
"""

from typing import Any

from fastapi import APIRouter, Request

from opencomms.api import body_check, filters, pagination, presenters, wire
from opencomms.api.deps import Account, BaseUrl, State
from opencomms.api.messages import accepted, read_json
from opencomms.api.responses import JSONResponse
from opencomms.api.senders import checked_body, sender_page
from opencomms.clock import now_ms
from opencomms.domain import errors
from opencomms.domain.errors import Problem
from opencomms.domain.sender_pools import PoolOperationRecord, name_problems
from opencomms.services import sender_pools, senders
from opencomms.services.sender_pools import PoolDraft

router = APIRouter(tags=["SenderPools"])


def _pool_uri(base: str, pool_id: str) -> str:
    return f"{base}/SenderPools/{pool_id}"


def _operation_accepted(operation: PoolOperationRecord, base: str, resources: str) -> JSONResponse:
    location = f"{base}/SenderPools/Operations/{operation.id}"
    return accepted(operation.id, base, resources, location)


def _resource_accepted(resource_id: str, location: str) -> JSONResponse:
    body = wire.ResourceAccepted(resource_id=resource_id, resource_location=location)
    return JSONResponse(wire.dump(body), status_code=202, headers={"Location": location})


def _sender_ids(items: Any, problems: list[Problem], path: str) -> list[str | None]:
    """Each item's senderId by position; None for an item the schema check refused. An item
    without one (the create schema lets it through) is refused here: it names nothing."""
    if not isinstance(items, list):
        return []
    refused = {p.context for p in problems}
    found: list[str | None] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}].senderId"
        missing = isinstance(item, dict) and "senderId" not in item
        if missing and not refused & {where, f"{path}[{i}]"}:
            problems.append(Problem(errors.INVALID_PARAMETER, "'senderId' is required", where))
        ok = isinstance(item, dict) and isinstance(item.get("senderId"), str)
        found.append(item["senderId"] if ok and where not in refused else None)
    return found


@router.get("/SenderPools/Operations")
async def list_operations(
    account: Account,
    app: State,
    page: pagination.Paging,
    startDate: str | None = None,
    endDate: str | None = None,
    status: str | None = None,
) -> Any:
    """List SenderPool Operations, newest first."""
    operation_filter = filters.pool_operation_filter(startDate, endDate, status)
    records = await sender_pools.list_operations(
        app.db, account, operation_filter, before_id=page.before, limit=page.limit
    )
    return page.answer(
        records,
        lambda shown, links: wire.SenderPoolOperationList(
            operations=[presenters.sender_pool_operation(r) for r in shown], pagination=links
        ),
    )


@router.get("/SenderPools/Operations/{operationId}")
async def fetch_operation(operationId: str, account: Account, app: State) -> Any:
    """Fetch a SenderPool Operation."""
    record = await sender_pools.get_operation(app.db, account, operationId)
    return JSONResponse(wire.dump(presenters.sender_pool_operation(record)))


@router.post("/SenderPools", status_code=202)
async def create_pool(request: Request, account: Account, app: State, base: BaseUrl) -> Any:
    """Create a SenderPool, with its first senders if given."""
    body, problems = await checked_body(request, "/SenderPools", "post", enums=False)
    problems += name_problems(body.get("name"), "$.name")
    name = body.get("name")
    tags = body.get("tags")
    draft = PoolDraft(
        name=name if isinstance(name, str) else "",
        tags=tags if isinstance(tags, dict) else {},
        sender_ids=_sender_ids(body.get("senders"), problems, "$.senders"),
    )
    operation = await sender_pools.create_pool(app.db, account, draft, now_ms(), prior=problems)
    resources = f"{base}/SenderPools?operationId={operation.id}"
    return _operation_accepted(operation, base, resources)


@router.get("/SenderPools")
async def list_pools(
    account: Account,
    app: State,
    page: pagination.Paging,
    startDate: str | None = None,
    endDate: str | None = None,
    operationId: str | None = None,
) -> Any:
    """List the account's SenderPools, newest first."""
    pool_filter = filters.pool_filter(startDate, endDate, operationId)
    records = await sender_pools.list_pools(
        app.db, account, pool_filter, before_id=page.before, limit=page.limit
    )
    return page.answer(
        records,
        lambda shown, links: wire.SenderPoolList(
            sender_pools=[presenters.sender_pool(r) for r in shown], pagination=links
        ),
    )


@router.get("/SenderPools/{senderPoolId}")
async def fetch_pool(senderPoolId: str, account: Account, app: State) -> Any:
    """Fetch a SenderPool."""
    record = await sender_pools.get_pool(app.db, account, senderPoolId)
    return JSONResponse(wire.dump(presenters.sender_pool(record)))


@router.patch("/SenderPools/{senderPoolId}", status_code=202)
async def update_pool(
    senderPoolId: str, request: Request, account: Account, app: State, base: BaseUrl
) -> Any:
    """Rename a SenderPool and/or replace its tags."""
    body, problems = await checked_body(
        request, "/SenderPools/{senderPoolId}", "patch", enums=False
    )
    problems += name_problems(body.get("name"), "$.name")
    changes = {key: body[key] for key in ("name", "tags") if key in body}
    await sender_pools.update_pool(app.db, account, senderPoolId, changes, now_ms(), prior=problems)
    return _resource_accepted(senderPoolId, _pool_uri(base, senderPoolId))


@router.delete("/SenderPools/{senderPoolId}", status_code=202)
async def delete_pool(senderPoolId: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Delete a SenderPool (messages already sent through it keep naming it)."""
    await sender_pools.delete_pool(app.db, account, senderPoolId, now_ms())
    return _resource_accepted(senderPoolId, _pool_uri(base, senderPoolId))


@router.post("/SenderPools/{senderPoolId}/Senders", status_code=202)
async def add_senders(
    senderPoolId: str, request: Request, account: Account, app: State, base: BaseUrl
) -> Any:
    """Add the account's Senders to a SenderPool."""
    body = await read_json(request)
    path = "/SenderPools/{senderPoolId}/Senders"
    problems: list[Problem] = body_check.check_request(path, "post", body)
    problems += body_check.nul_problems(body)
    sender_ids = _sender_ids(body, problems, "$")
    operation = await sender_pools.add_senders(
        app.db, account, senderPoolId, sender_ids, now_ms(), prior=problems
    )
    members = f"{_pool_uri(base, senderPoolId)}/Senders"
    return _operation_accepted(operation, base, members)


@router.get("/SenderPools/{senderPoolId}/Senders")
async def list_pool_senders(
    senderPoolId: str,
    account: Account,
    app: State,
    page: pagination.Paging,
    channel: str | None = None,
    status: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
) -> Any:
    """List the Senders of a SenderPool, with the spec's filters."""
    sender_filter = filters.sender_filter(channel, status, startDate, endDate)
    records = await senders.list_senders(
        app.db, account, sender_filter, before_id=page.before, limit=page.limit,
        pool_id=senderPoolId,
    )  # fmt: skip
    return sender_page(page, records)


@router.delete("/SenderPools/{senderPoolId}/Senders/{senderId}", status_code=202)
async def remove_sender(
    senderPoolId: str, senderId: str, account: Account, app: State, base: BaseUrl
) -> Any:
    """Take a Sender out of a SenderPool."""
    await sender_pools.remove_sender(app.db, account, senderPoolId, senderId)
    location = f"{_pool_uri(base, senderPoolId)}/Senders/{senderId}"
    return _resource_accepted(senderId, location)
