"""Console sign-in: a sealed session cookie, CSRF tokens, and the security headers.

The cookie carries the credential pair itself, sealed with a key derived from the server key
(Fernet: encrypted and authenticated). Every request checks that pair again with the API's
own credential check, so a revoked API key or a changed auth token signs the console out as
it locks out the API, and no server-side session table is needed.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from opencomms.api.deps import AppState, account_for
from opencomms.store.accounts import SecretBox

SESSION_COOKIE = "oc_session"
LOGIN_COOKIE = "oc_login"
SESSION_SECONDS = 12 * 3600

# Scripts, styles and images only from this server; no inline script or style anywhere.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SignInRequired(Exception):
    """No valid session: the browser goes to the sign-in page."""


class FormRejected(Exception):
    """A form posted without this session's CSRF token."""


@dataclass(frozen=True, slots=True)
class Session:
    account_sid: str
    username: str  # the Account SID or API key SID signed in with
    nonce: str  # binds CSRF tokens to this session


class ConsoleKeys:
    """The console's secrets, each derived from the server key for its one purpose."""

    def __init__(self, server_key: str) -> None:
        self._box = SecretBox(server_key + ":console-session")
        self._csrf = hashlib.sha256((server_key + ":console-csrf").encode()).digest()

    def seal(self, username: str, password: str, nonce: str) -> str:
        payload = {
            "u": username,
            "p": password,
            "n": nonce,
            "e": int(time.time()) + SESSION_SECONDS,
        }
        return self._box.seal(orjson.dumps(payload).decode())

    def open(self, sealed: str) -> dict[str, str] | None:
        opened = self._box.open(sealed)
        if opened is None:
            return None
        try:
            payload = orjson.loads(opened)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(payload, dict) or payload.get("e", 0) < time.time():
            return None
        return payload

    def csrf(self, nonce: str) -> str:
        return hmac.new(self._csrf, nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(nonce), token)


def keys(request: Request) -> ConsoleKeys:
    found: ConsoleKeys = request.app.state.console_keys
    return found


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


async def current_session(request: Request) -> Session | None:
    """The signed-in session, re-checked against the account's current credentials."""
    sealed = request.cookies.get(SESSION_COOKIE)
    payload = keys(request).open(sealed) if sealed else None
    if payload is None:
        return None
    app: AppState = request.app.state.opencomms
    account_sid = await account_for(app, payload["u"], payload["p"])
    if account_sid is None:
        return None
    return Session(account_sid, payload["u"], payload["n"])


def _secure(request: Request) -> bool:
    # Behind a TLS-terminating proxy the request itself is plain HTTP: trust the public URL.
    public_url: str | None = request.app.state.opencomms.public_url
    return request.url.scheme == "https" or bool(public_url and public_url.startswith("https:"))


def set_session(response: Response, request: Request, username: str, password: str) -> None:
    sealed = keys(request).seal(username, password, new_nonce())
    response.set_cookie(
        SESSION_COOKIE,
        sealed,
        max_age=SESSION_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/console")


def login_nonce(request: Request) -> str:
    """The sign-in form's CSRF nonce: the one its cookie holds, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or new_nonce()


def remember_login_nonce(request: Request, response: Response, nonce: str) -> None:
    """Keeps the sign-in form's nonce in its own short-lived cookie."""
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def secure_headers(response: Response, csp: str = CONSOLE_CSP) -> None:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
