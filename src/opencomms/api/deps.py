"""Request dependencies: the database, the caller's account, the public base URL."""

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from opencomms.api.errors import Unauthorized
from opencomms.store import accounts
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database


@dataclass(frozen=True)
class AppState:
    db: Database
    box: SecretBox
    public_url: str | None


def state(request: Request) -> AppState:
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
    app = state(request)
    async with app.db.read() as conn:
        account_sid = await accounts.authenticate(conn, app.box, username, password)
    if account_sid is None:
        raise Unauthorized
    return account_sid


Account = Annotated[str, Depends(current_account)]
State = Annotated[AppState, Depends(state)]


def base_url(request: Request) -> str:
    """Scheme, host and API prefix (`/v1` or `/preview`) as the caller used them."""
    configured = state(request).public_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    prefix = "/preview" if request.url.path.startswith("/preview") else "/v1"
    return root + prefix


BaseUrl = Annotated[str, Depends(base_url)]
