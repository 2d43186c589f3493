"""The Senders resource: list, fetch, search, and resolve pairings for a person."""

from typing import Any

from fastapi import APIRouter, Request

from opencomms.api import body_check, filters, pagination, presenters, wire
from opencomms.api.deps import Account, State
from opencomms.api.messages import read_json_object
from opencomms.api.responses import JSONResponse
from opencomms.domain import errors
from opencomms.domain.errors import Problem, ValidationFailed
from opencomms.domain.records import SenderFilter
from opencomms.domain.resolve import ChannelControl, RecipientAddress
from opencomms.domain.senders import SenderRecord
from opencomms.services import senders
from opencomms.services.senders import ResolveQuery, SenderAddress

router = APIRouter(tags=["Senders"])


def sender_page(page: pagination.PageRequest, records: list[SenderRecord]) -> JSONResponse:
    """A page of senders, as every sender list answers."""
    return page.answer(
        records,
        lambda shown, links: wire.SenderList(
            senders=[presenters.sender(r) for r in shown], pagination=links
        ),
    )


async def checked_body(
    request: Request, path: str, method: str, *, enums: bool = True
) -> tuple[Any, list[Problem]]:
    """The body (its enums upper-cased, for bodies that have no free-form maps such as tags),
    and every way it breaks the operation's schema."""
    body = await read_json_object(request)
    if enums:
        wire.upper_enum_fields(body)
    return body, body_check.check_request(path, method, body) + body_check.nul_problems(body)


@router.get("/Senders")
async def list_senders(
    account: Account,
    app: State,
    page: pagination.Paging,
    channel: str | None = None,
    status: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
) -> Any:
    """List the account's Senders, with the spec's filters."""
    sender_filter = filters.sender_filter(channel, status, startDate, endDate)
    records = await senders.list_senders(
        app.db, account, sender_filter, before_id=page.before, limit=page.limit
    )
    return sender_page(page, records)


@router.post("/Senders/Search")
async def search_senders(request: Request, account: Account, app: State) -> Any:
    """Search Senders by address and channel (and status)."""
    body, problems = await checked_body(request, "/Senders/Search", "post")
    if problems:
        raise ValidationFailed(problems)
    page = pagination.PageRequest(
        pagination.decode(body.get("pageToken")),
        int(body.get("pageSize", pagination.DEFAULT_PAGE_SIZE)),  # the schema allows 5.0
    )
    sender_filter = SenderFilter(
        channel=body["channel"], status=body.get("status"), address=body["address"]
    )
    records = await senders.list_senders(
        app.db, account, sender_filter, before_id=page.before, limit=page.limit
    )
    return sender_page(page, records)


@router.post("/Senders/Resolve")
async def resolve_senders(request: Request, account: Account, app: State) -> Any:
    """The best sender/recipient pairings for one person's addresses, best first."""
    body, problems = await checked_body(request, "/Senders/Resolve", "post")
    query, more = _resolve_query(body)
    pairings = await senders.resolve_senders(app.db, account, query, prior=problems + more)
    return JSONResponse(
        wire.dump(wire.ResolveResults(results=[presenters.pairing(p) for p in pairings]))
    )


def _resolve_query(body: dict[str, Any]) -> tuple[ResolveQuery, list[Problem]]:
    """The request in domain terms, read leniently: the schema check reports what is wrong."""
    items = body.get("recipientAddresses")
    recipients = [
        RecipientAddress(item["address"], item["channel"])
        if isinstance(item, dict) and _strings(item, "address", "channel")
        else RecipientAddress("", "")  # a placeholder that keeps the positions
        for item in (items if isinstance(items, list) else [])
    ]
    pool_id = body.get("senderPoolId")
    sender, problems = _sender_address(body.get("senderAddresses"))
    if pool_id is not None and sender is not None:
        problems.append(
            Problem(
                errors.INVALID_PARAMETER,
                "Give senderPoolId or senderAddresses, not both",
                "$.senderAddresses",
            )
        )
    query = ResolveQuery(
        recipients=recipients,
        pool_id=pool_id if isinstance(pool_id, str) else None,
        sender=sender,
        control=_control(body.get("channels")),
    )
    return query, problems


def _strings(item: dict[str, Any], *keys: str) -> bool:
    return all(isinstance(item.get(k), str) for k in keys)


def _sender_address(value: Any) -> tuple[SenderAddress | None, list[Problem]]:
    if not isinstance(value, dict):
        return None, []
    if isinstance(value.get("address"), str):
        channel = value.get("channel")
        return SenderAddress(value["address"], channel if isinstance(channel, str) else None), []
    if "address" in value:
        return None, []  # not a string: the schema check says so
    message = "OpenComms has no push senders: name a messaging or email sender address"
    return None, [Problem(errors.INVALID_PARAMETER, message, "$.senderAddresses")]


def _integer(value: Any) -> int | None:
    """An integer as JSON Schema counts them (2.0 is one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _control(value: Any) -> ChannelControl:
    if not isinstance(value, dict):
        return ChannelControl()
    filter_in = value.get("filterIn")
    priority: dict[str, int] = {}
    items = value.get("priority")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("channel"), str):
            rank = _integer(item.get("priority"))
            if rank is not None:
                priority[item["channel"]] = min(rank, priority.get(item["channel"], rank))
    return ChannelControl(
        filter_in=frozenset(c for c in filter_in if isinstance(c, str))
        if isinstance(filter_in, list)
        else frozenset(),
        priority=priority,
    )


@router.get("/Senders/{senderId}")
async def fetch_sender(senderId: str, account: Account, app: State) -> Any:
    """Fetch one of the account's Senders."""
    record = await senders.get_sender(app.db, account, senderId)
    return JSONResponse(wire.dump(presenters.sender(record)))
