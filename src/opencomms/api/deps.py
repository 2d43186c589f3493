"""Request dependencies: the database, the caller's account, the public base URL."""

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from opencomms.api.errors import Unauthorized
from opencomms.api.ttl_cache import TtlCache
from opencomms.config import Settings
from opencomms.domain.routing import AccountSenders
from opencomms.store import accounts
from opencomms.store.accounts import SecretBox
from opencomms.store.analyze import StatsKeeper
from opencomms.store.db import Database

if TYPE_CHECKING:
    from opencomms.api.ratelimit import RateLimiter


class VerifiedCredentials:
    """Credential pairs checked recently, so each request need not query and decrypt.

    Only a digest of the pair is kept, for a short time: a changed auth token stops working
    within `ttl` seconds. API keys are never kept: `opencomms keys revoke` runs in another
    process, and a revoked key must fail at once; checking one is a single primary-key read.
    """

    def __init__(self, ttl: float = 30.0, size: int = 10_000) -> None:
        self._cache: TtlCache[bytes, str] = TtlCache(ttl, size)

    @staticmethod
    def _key(username: str, password: str) -> bytes:
        return hashlib.sha256(f"{username}:{password}".encode()).digest()

    def get(self, username: str, password: str) -> str | None:
        return self._cache.get(self._key(username, password))

    def put(self, username: str, password: str, account_sid: str) -> None:
        if username.startswith("SK"):
            return  # API keys are checked every time (see above)
        self._cache.put(self._key(username, password), account_sid)


ACCOUNT_SENDERS_TTL = 5.0  # seconds an account's sender list is reused by the accept path


@dataclass(frozen=True)
class AppState:
    db: Database
    box: SecretBox
    public_url: str | None
    settings: Settings = field(default_factory=Settings)
    verified: VerifiedCredentials = field(default_factory=VerifiedCredentials)
    stats: StatsKeeper | None = None  # planner statistics after bulk inserts (PostgreSQL)
    limiter: "RateLimiter | None" = None  # per-account rate limits, when any is set
    account_senders: TtlCache[str, AccountSenders] = field(
        default_factory=lambda: TtlCache(ACCOUNT_SENDERS_TTL)
    )


async def state(request: Request) -> AppState:
    app_state: AppState = request.app.state.opencomms
    return app_state


def basic_credentials(header: str) -> tuple[str, str] | None:
    """The (username, password) of an HTTP Basic `Authorization` header, if it is one."""
    try:
        return _decode_basic(header)
    except Unauthorized:
        return None


async def authenticate_header(app: AppState, header: str) -> str | None:
    """The Account SID an `Authorization` header authenticates as, or None."""
    credentials = basic_credentials(header)
    if credentials is None:
        return None
    return await account_for(app, *credentials)


def _decode_basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise Unauthorized from error
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized
    return username, password


async def current_account(request: Request) -> str:
    """The Account SID the request authenticates as (Account SID or API key, HTTP Basic)."""
    return await authenticate(request.app.state.opencomms, request)


async def authenticate(app: AppState, request: Request) -> str:
    """The request's account; raises Unauthorized. A middleware (rate limits, idempotency)
    may have authenticated it already."""
    known: str | None = getattr(request.state, "account_sid", None)
    if known is not None:
        return known
    account_sid = await authenticate_header(app, request.headers.get("authorization", ""))
    if account_sid is None:
        raise Unauthorized
    request.state.account_sid = account_sid  # for the request's log line
    return account_sid


async def account_for(app: AppState, username: str, password: str) -> str | None:
    """The account a credential pair (Account SID + token, or API key + secret) opens; the
    API's check, shared with the console's sign-in."""
    account_sid = app.verified.get(username, password)
    if account_sid is not None:
        return account_sid
    async with app.db.read() as conn:
        account_sid = await accounts.authenticate(conn, app.box, username, password)
    if account_sid is not None:
        app.verified.put(username, password, account_sid)
    return account_sid


async def account_of_scope(scope: Scope) -> str | None:
    """For middlewares: the request's account, authenticated once and kept for the route."""
    state = scope.setdefault("state", {})
    known: str | None = state.get("account_sid")
    if known is not None:
        return known
    header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), b"")
    account = await authenticate_header(scope["app"].state.opencomms, header.decode("latin-1"))
    if account is not None:
        state["account_sid"] = account
    return account


Account = Annotated[str, Depends(current_account)]
State = Annotated[AppState, Depends(state)]


async def base_url(request: Request) -> str:
    """Scheme, host and API prefix (`/v1` or `/preview`) as the caller used them."""
    return public_base(request.app.state.opencomms, request)


def public_base(app: AppState, request: Request) -> str:
    configured = app.public_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    prefix = "/preview" if request.url.path.startswith("/preview") else "/v1"
    return root + prefix


BaseUrl = Annotated[str, Depends(base_url)]
