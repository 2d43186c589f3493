"""Signing in and out of the console."""

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from opencomms.api.deps import account_for
from opencomms.console import auth
from opencomms.console.web import (
    checked_form,
    form,
    page,
    safe_next,
    signed_in,
    state,
)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    session = await auth.current_session(request)
    return RedirectResponse("/console/operations" if session else "/console/login", 303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, safe_next(next), None, 200)


def _login_form(request: Request, target: str, error: str | None, status_code: int) -> Response:
    nonce = auth.login_nonce(request) if error is None else auth.new_nonce()
    response = page(
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
    fields = await form(request)
    nonce = request.cookies.get(auth.LOGIN_COOKIE, "")
    username, password = fields.get("username", "").strip(), fields.get("password", "")
    target = safe_next(fields.get("next"))
    if not nonce or not auth.keys(request).csrf_ok(nonce, fields.get("csrf", "")):
        return _login_form(request, target, "The sign-in form expired; please try again.", 403)
    if await account_for(state(request), username, password) is None:
        return _login_form(request, target, "Those credentials match no account or API key.", 401)
    response = RedirectResponse(target, status_code=303)
    auth.set_session(response, request, username, password)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await signed_in(request)
    await checked_form(request, session)
    response = RedirectResponse("/console/login", status_code=303)
    auth.clear_session(response)
    return response
