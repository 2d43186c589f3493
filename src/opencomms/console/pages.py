"""The console's pages. Each reads through the same store and service functions as the API
and shows the API's own wire shapes, so what a page says is what the API answers."""

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from opencomms.api import filters, pagination, presenters, wire
from opencomms.api.deps import AppState, account_for
from opencomms.api.responses import JSONResponse
from opencomms.clock import now_ms, rfc3339
from opencomms.console import auth
from opencomms.console.auth import Session
from opencomms.domain.errors import NotFound, Problem, ValidationFailed
from opencomms.domain.records import MessageFilter, OperationFilter
from opencomms.services import operations, sandbox
from opencomms.services.messages import message_detail
from opencomms.store import reads

router = APIRouter(prefix="/console", include_in_schema=False)

_templates = Environment(
    loader=PackageLoader("opencomms.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["when"] = rfc3339
_templates.filters["path"] = lambda value: quote(str(value), safe="")

PAGE_SIZE = 25
_FINAL_OPERATIONS = ("COMPLETED", "CANCELED")
_MESSAGE_FILTERS = ("operationId", "sessionId", "startDate", "endDate", "channel", "status", "tags")


class SignInRequired(Exception):
    """No valid session: the browser goes to the sign-in page."""


class FormRejected(Exception):
    """A form posted without this session's CSRF token."""


async def to_sign_in(request: Request, _exc: Exception) -> Response:
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/console/login?next={target}", status_code=303)


async def form_rejected(request: Request, _exc: Exception) -> Response:
    what = "This form expired or did not come from the console: reload the page and retry"
    return _page(request, "missing.html", None, 403, what=what, title="Form rejected")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.opencomms
    return state


async def _session(request: Request) -> Session:
    session = await auth.current_session(request)
    if session is None:
        raise SignInRequired
    return session


def _base(request: Request) -> str:
    configured = _state(request).public_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    return root + "/v1"


def _page(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    *,
    csrf: str | None = None,
    **context: Any,
) -> HTMLResponse:
    if csrf is None:
        csrf = auth.keys(request).csrf(session.nonce) if session else ""
    html = _templates.get_template(template).render(
        session=session, csrf=csrf, path=request.url.path, **context
    )
    response = HTMLResponse(html, status_code=status_code)
    auth.secure_headers(response)
    return response


async def _form(request: Request) -> dict[str, str]:
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


async def _checked_form(request: Request, session: Session) -> dict[str, str]:
    form = await _form(request)
    if not auth.keys(request).csrf_ok(session.nonce, form.get("csrf", "")):
        raise FormRejected
    return form


def _safe_next(target: str | None) -> str:
    # Only paths inside the console: never an open redirect to another site.
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/operations"


# -- signing in -------------------------------------------------------------------------------


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    session = await auth.current_session(request)
    return RedirectResponse("/console/operations" if session else "/console/login", 303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, _safe_next(next), None, 200)


def _login_form(request: Request, target: str, error: str | None, status_code: int) -> Response:
    nonce = auth.login_nonce(request) if error is None else auth.new_nonce()
    response = _page(
        request,
        "login.html",
        None,
        status_code,
        csrf=auth.keys(request).csrf(nonce),
        next=target,
        error=error,
    )
    auth.remember_login_nonce(request, response, nonce)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    nonce = request.cookies.get(auth.LOGIN_COOKIE, "")
    username, password = form.get("username", "").strip(), form.get("password", "")
    target = _safe_next(form.get("next"))
    if not nonce or not auth.keys(request).csrf_ok(nonce, form.get("csrf", "")):
        return _login_form(request, target, "The sign-in form expired; please try again.", 403)
    if await account_for(_state(request), username, password) is None:
        return _login_form(request, target, "Those credentials match no account or API key.", 401)
    response = RedirectResponse(target, status_code=303)
    auth.set_session(response, request, username, password)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await _session(request)
    await _checked_form(request, session)
    response = RedirectResponse("/console/login", status_code=303)
    auth.clear_session(response)
    return response


# -- operations -------------------------------------------------------------------------------


async def _operations(
    request: Request, account_sid: str, ids: list[str] | None, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    before = pagination.decode(token)
    async with _state(request).db.read() as conn:
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
    session = await _session(request)
    shown, next_token = await _operations(request, session.account_sid, None, pageToken)
    live = [o["id"] for o in shown if o["status"] not in _FINAL_OPERATIONS]
    return _page(
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
    session = await _session(request)
    shown, _ = await _operations(request, session.account_sid, [operation_id], None)
    if not shown:
        return _page(request, "missing.html", session, 404, what=f"Operation {operation_id}")
    operation = shown[0]
    async with _state(request).db.read() as conn:
        records = await reads.list_messages(
            conn,
            session.account_sid,
            MessageFilter(operation_id=operation_id),
            before_id=None,
            limit=PAGE_SIZE,
        )
    messages = [wire.dump(presenters.message_metadata(r, _base(request))) for r in records]
    live = [] if operation["status"] in _FINAL_OPERATIONS else [operation_id]
    return _page(
        request, "operation.html", session, operation=operation, messages=messages, live=live
    )


@router.post("/operations/{operation_id}/cancel")
async def cancel_page(request: Request, operation_id: str) -> Response:
    session = await _session(request)
    await _checked_form(request, session)
    try:
        async with _state(request).db.write() as conn:
            await operations.cancel(conn, session.account_sid, operation_id, now_ms())
    except NotFound:
        return _page(request, "missing.html", session, 404, what=f"Operation {operation_id}")
    return RedirectResponse(f"/console/operations/{quote(operation_id)}", status_code=303)


# -- messages ---------------------------------------------------------------------------------


@router.get("/messages")
async def messages_page(request: Request) -> Response:
    session = await _session(request)
    query = {k: v for k in _MESSAGE_FILTERS if (v := request.query_params.get(k))}
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
        async with _state(request).db.read() as conn:
            records = await reads.list_messages(
                conn, session.account_sid, wanted, before_id=before, limit=PAGE_SIZE + 1
            )
        _, next_token = pagination.page(before, [r.id for r in records], PAGE_SIZE)
        base = _base(request)
        messages = [wire.dump(presenters.message_metadata(r, base)) for r in records[:PAGE_SIZE]]
    except ValidationFailed as failed:
        problems = failed.problems
    return _page(
        request,
        "messages.html",
        session,
        status_code=400 if problems else 200,
        messages=messages,
        query=query,
        problems=problems,
        next_token=next_token,
        statuses=filters._MESSAGE_STATUSES,
        channels=filters._CHANNELS,
    )


@router.get("/messages/{message_id}")
async def message_page(request: Request, message_id: str) -> Response:
    session = await _session(request)
    try:
        async with _state(request).db.read() as conn:
            detail = await message_detail(conn, session.account_sid, message_id)
    except NotFound:
        return _page(request, "missing.html", session, 404, what=f"Message {message_id}")
    message = presenters.message_from_parts(
        detail.record, detail.content, detail.attempts, _base(request)
    )
    return _page(request, "message.html", session, message=wire.dump(message))


@router.get("/seek/{identifier}")
async def seek_page(request: Request, identifier: str) -> Response:
    """The message whose attempt a channel gave `identifier` (the API's Seek, for people)."""
    session = await _session(request)
    async with _state(request).db.read() as conn:
        message_id = await reads.find_by_external_id(conn, session.account_sid, identifier)
    if message_id is None:
        return _page(request, "missing.html", session, 404, what=f"Identifier {identifier}")
    return RedirectResponse(f"/console/messages/{quote(message_id)}", status_code=303)


# -- the sandbox inbox ------------------------------------------------------------------------


@router.get("/inbox")
async def inbox_page(request: Request) -> Response:
    session = await _session(request)
    async with _state(request).db.read() as conn:
        summaries = await sandbox.threads(conn, session.account_sid)
    return _page(request, "inbox.html", session, threads=summaries, problems=[])


async def _thread_page(
    request: Request, session: Session, number: str, problems: list[Problem], status_code: int
) -> Response:
    async with _state(request).db.read() as conn:
        items = await sandbox.thread(conn, session.account_sid, number)
        senders = await sandbox.sender_addresses(conn, session.account_sid)
    return _page(
        request,
        "thread.html",
        session,
        status_code,
        number=number,
        items=items,
        senders=senders,
        problems=problems,
    )


@router.get("/inbox/{number}")
async def thread_page(request: Request, number: str) -> Response:
    session = await _session(request)
    return await _thread_page(request, session, number, [], 200)


@router.get("/api/inbox/{number}")
async def thread_size(request: Request, number: str) -> Response:
    """How many bubbles a thread has: the thread page's script reloads when it grows."""
    session = await auth.current_session(request)
    if session is None:
        return JSONResponse({"signedIn": False}, status_code=401)
    async with _state(request).db.read() as conn:
        items = await sandbox.thread(conn, session.account_sid, number)
    response = JSONResponse({"count": len(items)})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/inbox/{number}/reply")
async def reply_page(request: Request, number: str) -> Response:
    """The phone `number` writes to one of the account's senders (an INBOUND message)."""
    session = await _session(request)
    form = await _checked_form(request, session)
    try:
        async with _state(request).db.write() as conn:
            senders = {s.id: s for s in await sandbox.sender_addresses(conn, session.account_sid)}
            sender = senders.get(form.get("sender", ""))
            if sender is None:
                raise ValidationFailed([Problem(20422, "Choose one of your senders", "$.to")])
            command = sandbox.Reply(
                from_address=number,
                from_channel="WHATSAPP" if sender.channel == "WHATSAPP" else "PHONE",
                to_address=sender.address,
                to_channel=sender.channel.value,
                content={"text": form.get("text", "")},
            )
            if not command.content["text"].strip():
                raise ValidationFailed([Problem(20422, "Write a message first", "$.content")])
            await sandbox.reply(conn, session.account_sid, command, now_ms())
    except ValidationFailed as failed:
        return await _thread_page(request, session, number, failed.problems, 400)
    return RedirectResponse(f"/console/inbox/{quote(number, safe='')}", status_code=303)


@router.post("/inbox")
async def new_thread(request: Request) -> Response:
    """Opens the thread of a number typed in (it may have received nothing yet)."""
    session = await _session(request)
    form = await _checked_form(request, session)
    number = form.get("number", "").strip()
    if not number:
        async with _state(request).db.read() as conn:
            summaries = await sandbox.threads(conn, session.account_sid)
        problems = [Problem(20422, "Type a phone number, e.g. +14155550100", "$.number")]
        return _page(request, "inbox.html", session, 400, threads=summaries, problems=problems)
    return RedirectResponse(f"/console/inbox/{quote(number, safe='')}", status_code=303)
