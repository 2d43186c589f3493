"""The sandbox inbox as phone threads, and replies as the phone."""

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from opencomms.api.responses import JSONResponse
from opencomms.clock import now_ms
from opencomms.console import auth
from opencomms.console.auth import Session
from opencomms.console.web import (
    checked_form,
    page,
    signed_in,
    state,
)
from opencomms.domain.errors import Problem, ValidationFailed
from opencomms.services import sandbox

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/inbox")
async def inbox_page(request: Request) -> Response:
    session = await signed_in(request)
    async with state(request).db.read() as conn:
        summaries = await sandbox.threads(conn, session.account_sid)
    return page(request, "inbox.html", session, threads=summaries, problems=[])


async def _thread_page(
    request: Request, session: Session, number: str, problems: list[Problem], status_code: int
) -> Response:
    async with state(request).db.read() as conn:
        items = await sandbox.thread(conn, session.account_sid, number)
        senders = await sandbox.sender_addresses(conn, session.account_sid)
    return page(
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
    session = await signed_in(request)
    return await _thread_page(request, session, number, [], 200)


@router.get("/api/inbox/{number}")
async def thread_size(request: Request, number: str) -> Response:
    """How many bubbles a thread has: the thread page's script reloads when it grows."""
    session = await auth.current_session(request)
    if session is None:
        return JSONResponse({"signedIn": False}, status_code=401)
    async with state(request).db.read() as conn:
        items = await sandbox.thread(conn, session.account_sid, number)
    response = JSONResponse({"count": len(items)})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/inbox/{number}/reply")
async def reply_page(request: Request, number: str) -> Response:
    """The phone `number` writes to one of the account's senders (an INBOUND message)."""
    session = await signed_in(request)
    fields = await checked_form(request, session)
    try:
        async with state(request).db.write() as conn:
            senders = {s.id: s for s in await sandbox.sender_addresses(conn, session.account_sid)}
            sender = senders.get(fields.get("sender", ""))
            if sender is None:
                raise ValidationFailed([Problem(20422, "Choose one of your senders", "$.to")])
            command = sandbox.Reply(
                from_address=number,
                from_channel="WHATSAPP" if sender.channel == "WHATSAPP" else "PHONE",
                to_address=sender.address,
                to_channel=sender.channel.value,
                content={"text": fields.get("text", "")},
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
    session = await signed_in(request)
    fields = await checked_form(request, session)
    number = fields.get("number", "").strip()
    if not number:
        async with state(request).db.read() as conn:
            summaries = await sandbox.threads(conn, session.account_sid)
        problems = [Problem(20422, "Type a phone number, e.g. +14155550100", "$.number")]
        return page(request, "inbox.html", session, 400, threads=summaries, problems=problems)
    return RedirectResponse(f"/console/inbox/{quote(number, safe='')}", status_code=303)
