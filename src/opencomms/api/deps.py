"""Request dependencies: the database, the caller's account, the public base URL."""

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from opencomms.api.errors import Unauthorized
from opencomms.store import accounts
from opencomms.store.accounts import SecretBox
from opencomms.store.analyze import StatsKeeper
from opencomms.store.db import Database


class VerifiedCredentials:
    """Credential pairs checked recently, so each request need not query and decrypt.

    Only a digest of the pair is kept, for a short time: a changed token or a removed key
    stops working within `ttl` seconds.
    """

    def __init__(self, ttl: float = 30.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[bytes, tuple[str, float]] = {}

    @staticmethod
    def _key(username: str, password: str) -> bytes:
        return hashlib.sha256(f"{username}:{password}".encode()).digest()

    def get(self, username: str, password: str) -> str | None:
        entry = self._entries.get(self._key(username, password))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, username: str, password: str, account_sid: str) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[self._key(username, password)] = (account_sid, time.monotonic() + self.ttl)


@dataclass(frozen=True)
class AppState:
    db: Database
    box: SecretBox
    public_url: str | None
    verified: VerifiedCredentials = field(default_factory=VerifiedCredentials)
    stats: StatsKeeper | None = None  # planner statistics after bulk inserts (PostgreSQL)


async def state(request: Request) -> AppState:
    app_state: AppState = request.app.state.opencomms
    return app_state


def _basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
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
    username, password = _basic_credentials(request)
    app: AppState = request.app.state.opencomms
    account_sid = app.verified.get(username, password)
    if account_sid is not None:
        request.state.account_sid = account_sid  # for the request's log line
        return account_sid
    async with app.db.read() as conn:
        account_sid = await accounts.authenticate(conn, app.box, username, password)
    if account_sid is None:
        raise Unauthorized
    app.verified.put(username, password, account_sid)
    request.state.account_sid = account_sid
    return account_sid


Account = Annotated[str, Depends(current_account)]
State = Annotated[AppState, Depends(state)]


async def base_url(request: Request) -> str:
    """Scheme, host and API prefix (`/v1` or `/preview`) as the caller used them."""
    configured = request.app.state.opencomms.public_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    prefix = "/preview" if request.url.path.startswith("/preview") else "/v1"
    return root + prefix


BaseUrl = Annotated[str, Depends(base_url)]
