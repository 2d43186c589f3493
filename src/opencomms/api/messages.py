"""The Messages resource: send, list, fetch, seek."""

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from opencomms import ids
from opencomms.api import body_check, filters, json_body, pagination, presenters, wire
from opencomms.api.deps import Account, AppState, BaseUrl, State
from opencomms.api.idempotency import answer_for, answered
from opencomms.api.presenters import operation_uri
from opencomms.api.ratelimit import RECIPIENTS, RateLimited
from opencomms.api.responses import JSONResponse
from opencomms.clock import now_ms
from opencomms.domain import errors
from opencomms.domain.errors import NotFound, Problem, ValidationFailed
from opencomms.domain.routing import AccountSenders, SenderSpec
from opencomms.domain.send import MAX_PROBLEMS, PreparedSend, SendCommand, prepare
from opencomms.services.messages import message_detail
from opencomms.store import reads, sends
from opencomms.store.idempotency import Answer
from opencomms.templating import budget

router = APIRouter(tags=["Messages"])


async def read_json(request: Request) -> Any:
    raw = await request.body()
    # A large body is parsed in pieces on a thread (api/json_body.py): the event loop runs
    # between the pieces.
    return await off_loop(len(raw) >= json_body.SPLIT_BYTES, parse_json, raw)


def parse_json(raw: bytes) -> Any:
    try:
        return json_body.loads(raw)
    except (orjson.JSONDecodeError, json_body.Malformed) as error:
        raise ValidationFailed(
            [Problem(errors.MALFORMED_REQUEST, f"The body is not valid JSON: {error}", None)]
        ) from error
    except json_body.TooLarge as error:
        raise ValidationFailed([Problem(errors.INVALID_PARAMETER, f"{error}", "$")]) from error


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationFailed(
            [Problem(errors.MALFORMED_REQUEST, "The body must be a JSON object", "$")]
        )
    return body


def accepted(
    operation_id: str, base: str, resources: str, location: str | None = None
) -> JSONResponse:
    """A 202 with the body and every header of decision 1; `location` is the operation's URI
    when it is not a Message Operation."""
    location = location or operation_uri(base, operation_id)
    body = wire.dump(wire.Accepted(operation_id=operation_id, operation_location=location))
    headers = {
        "Location": location,
        "operation-location": location,
        "operation-id": operation_id,
        "resource-location": resources,
    }
    return JSONResponse(body, status_code=202, headers=headers)


# Bodies past this size, or with Liquid tags or filters, are parsed and checked on a thread.
_INLINE_BODY_BYTES = 16 * 1024
_COSTLY_MARKUP = (b"{%", b"|")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ValidationFailed(
            [Problem(errors.MALFORMED_REQUEST, "The body must be a JSON object", "$")]
        )
    return body


def check_body(raw: bytes) -> tuple[dict[str, Any], SendCommand, list[Problem]]:
    """The body parsed, schema-checked and made a command (its problems kept for later)."""
    body = parse_json_object(raw)
    wire.normalize_enums(body)
    problems = body_check.check_send_request(body)
    refused = frozenset(p.context for p in problems if p.context)
    return body, wire.send_command(body, refused), problems


def check_command(
    command: SendCommand, available: AccountSenders, problems: list[Problem]
) -> tuple[PreparedSend, list[Problem]]:
    """The domain checks and trial renders; raises ValidationFailed with every problem."""
    prepared = None
    with budget.shared_pool():
        try:
            prepared = prepare(command, available)
        except ValidationFailed as failed:
            problems = problems + failed.problems
    if problems or prepared is None:
        raise ValidationFailed(problems[:MAX_PROBLEMS])
    return prepared, problems


async def off_loop(costly: bool, func: Any, *args: Any) -> Any:
    """`func(*args)`, on a thread when `costly`."""
    return await asyncio.to_thread(func, *args) if costly else func(*args)


def is_costly(raw: bytes) -> bool:
    return len(raw) > _INLINE_BODY_BYTES or any(mark in raw for mark in _COSTLY_MARKUP)


@router.post("/Messages", status_code=202)
async def send_messages(request: Request, account: Account, app: State, base: BaseUrl) -> Any:
    """Send Messages: accepts up to 10,000 recipients; every one is stored before the 202."""
    return await accept_send(request, account, app, base)


async def available_senders(app: AppState, account: str, spec: SenderSpec | None) -> AccountSenders:
    """The account's senders, read once per `ACCOUNT_SENDERS_TTL`: they change only when
    the configuration is synced, at start. Pool members, which the API changes, are read
    every time a pool is used."""
    cached = app.account_senders.get(account)
    if cached is not None and (spec is None or spec.pool_lookup is None):
        return cached
    async with app.db.read() as conn:
        available = await sends.account_senders(conn, account, spec)
    app.account_senders.put(account, AccountSenders(available.senders))
    return available


async def accept_send(request: Request, account: str, app: AppState, base: str) -> JSONResponse:
    """The whole of a send, shared by the route above and the fast path (api/fast_path.py)."""
    operation_id = ids.operation_id()
    response = accepted(operation_id, base, f"{base}/Messages?operationId={operation_id}")
    # With an Idempotency-Key, its 202 commits with the send: a crash between the commit
    # and the answer replays it on retry instead of sending again.
    answer = answer_for(request, response)
    await store_send(app, account, await request.body(), operation_id, answer)
    answered(request)
    return response


async def store_send(
    app: AppState,
    account: str,
    raw: bytes,
    operation_id: str | None = None,
    answer: Answer | None = None,
) -> str:
    """Checks a send body and writes it (with `answer` recorded under its Idempotency-Key);
    the new operation's id. Without HTTP, so that `opencomms send` on the local database
    takes the very path a request takes."""
    # Large or templated bodies are parsed, checked and trial-rendered on a thread: a 20 MB
    # body or 10,000 trial renders would otherwise hold the event loop for seconds.
    costly = is_costly(raw)
    body, command, problems = await off_loop(costly, check_body, raw)
    available = await available_senders(app, account, command.sender)
    prepared, problems = await off_loop(costly, check_command, command, available, problems)
    await _spend_recipients(app, account, len(prepared.recipients))
    if any(s.mps for s in available.senders):
        async with app.db.read() as conn:
            validity = app.settings.worker.validity_seconds
            where = "$.from" if "from" in body else "$.to"
            full = await sends.full_senders(conn, prepared, available, validity, where)
        if full:
            raise ValidationFailed(full)
    operation_id = operation_id or ids.operation_id()
    await sends.write_send(
        app.db,
        account_sid=account,
        operation_id=operation_id,
        prepared=prepared,
        content=body["content"],
        sender=body.get("from"),
        now=now_ms(),
        answer=answer,
    )
    if app.stats is not None:
        app.stats.inserted("messages", len(prepared.recipients))
    return operation_id


async def _spend_recipients(app: AppState, account: str, count: int) -> None:
    if app.limiter is None:
        return
    decision = await app.limiter.spend(account, RECIPIENTS, count)
    if decision is not None and not decision.allowed:
        raise RateLimited(decision, "recipients this minute")


@router.get("/Messages")
async def list_messages(
    account: Account,
    app: State,
    base: BaseUrl,
    operationId: str | None = None,
    sessionId: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
    profile: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    tags: str | None = None,
    pageToken: str | None = None,
    pageSize: str | None = None,
) -> Any:
    """List Messages, newest first, with every filter of the spec."""
    message_filter = filters.message_filter(
        operation_id=operationId,
        session_id=sessionId,
        start=startDate,
        end=endDate,
        profile=profile,
        channel=channel,
        status=status,
        tags=tags,
    )
    size = filters.page_size(pageSize)
    before = pagination.decode(pageToken)
    async with app.db.read() as conn:
        records = await reads.list_messages(
            conn, account, message_filter, before_id=before, limit=size + 1
        )
    self_token, next_token = pagination.page(before, [r.id for r in records], size)
    return JSONResponse(
        wire.dump(
            wire.MessageList(
                messages=[presenters.message_metadata(r, base) for r in records[:size]],
                pagination=wire.Pagination(next=next_token, self_=self_token),
            )
        )
    )


@router.get("/Messages/Seek/{identifier}", status_code=301)
async def seek_message(identifier: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Seek a Message by an identifier a channel gave one of its attempts."""
    async with app.db.read() as conn:
        message_id = await reads.find_by_external_id(conn, account, identifier)
    if message_id is None:
        raise NotFound(f"with identifier {identifier}")
    # An email's attempts carry its Message-ID: Seek finds emails too.
    resource = "Emails" if message_id.startswith(ids.EMAIL_PREFIX) else "Messages"
    return RedirectResponse(f"{base}/{resource}/{message_id}", status_code=301)


@router.get("/Messages/{messageId}")
async def fetch_message(messageId: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Fetch a Message with its content resolved for its recipient and its attempts."""
    if not messageId.startswith(ids.MESSAGE_PREFIX):
        raise NotFound(f"Message {messageId}")  # an email is not a message
    async with app.db.read() as conn:
        detail = await message_detail(conn, account, messageId)
    message = presenters.message_from_parts(detail.record, detail.content, detail.attempts, base)
    return JSONResponse(wire.dump(message))
