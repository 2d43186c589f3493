"""Accounts and API keys.

Auth tokens are kept encrypted (Fernet, with the server key): they must be recoverable
because they will sign webhooks, as at Twilio. API key secrets are only ever checked, so only
their SHA-256 is kept; they are 128 random bits, which a slow hash would not make stronger.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.clock import now_ms
from opencomms.store.tables import accounts, api_keys


class SecretBox:
    """Encrypts secrets at rest with a key derived from the server key."""

    def __init__(self, server_key: str) -> None:
        digest = hashlib.sha256(server_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewCredential:
    sid: str
    secret: str
    account_sid: str


async def create_account(
    conn: AsyncConnection,
    box: SecretBox,
    *,
    sid: str | None = None,
    auth_token: str | None = None,
    friendly_name: str = "",
) -> NewCredential:
    sid = sid or ids.account_sid()
    token = auth_token or ids.new_secret()
    await conn.execute(
        accounts.insert().values(
            sid=sid,
            auth_token_enc=box.seal(token),
            friendly_name=friendly_name,
            created_at=now_ms(),
        )
    )
    return NewCredential(sid=sid, secret=token, account_sid=sid)


async def set_auth_token(conn: AsyncConnection, box: SecretBox, sid: str, token: str) -> None:
    await conn.execute(
        accounts.update().where(accounts.c.sid == sid).values(auth_token_enc=box.seal(token))
    )


async def account_exists(conn: AsyncConnection, sid: str) -> bool:
    query = select(accounts.c.sid).where(accounts.c.sid == sid)
    return (await conn.execute(query)).first() is not None


async def count_accounts(conn: AsyncConnection) -> int:
    return len((await conn.execute(select(accounts.c.sid))).all())


async def create_api_key(
    conn: AsyncConnection, account_sid: str, friendly_name: str = ""
) -> NewCredential:
    sid = ids.api_key_sid()
    secret = ids.new_secret()
    await conn.execute(
        api_keys.insert().values(
            sid=sid,
            account_sid=account_sid,
            secret_hash=hash_secret(secret),
            friendly_name=friendly_name,
            created_at=now_ms(),
        )
    )
    return NewCredential(sid=sid, secret=secret, account_sid=account_sid)


@dataclass(frozen=True)
class AccountInfo:
    sid: str
    friendly_name: str
    created_at: int
    api_keys: int


@dataclass(frozen=True)
class ApiKeyInfo:
    sid: str
    account_sid: str
    friendly_name: str
    created_at: int


async def list_accounts(conn: AsyncConnection) -> list[AccountInfo]:
    """Every account, oldest first, with how many API keys it has (never a secret)."""
    keys = (
        select(api_keys.c.account_sid, func.count().label("n"))
        .group_by(api_keys.c.account_sid)
        .subquery()
    )
    query = (
        select(accounts.c.sid, accounts.c.friendly_name, accounts.c.created_at, keys.c.n)
        .outerjoin(keys, keys.c.account_sid == accounts.c.sid)
        .order_by(accounts.c.created_at, accounts.c.sid)
    )
    rows = (await conn.execute(query)).all()
    return [AccountInfo(r.sid, r.friendly_name, r.created_at, r.n or 0) for r in rows]


async def list_api_keys(conn: AsyncConnection, account_sid: str | None = None) -> list[ApiKeyInfo]:
    """API keys, oldest first, of one account or of all; secrets are not recoverable."""
    query = select(
        api_keys.c.sid, api_keys.c.account_sid, api_keys.c.friendly_name, api_keys.c.created_at
    ).order_by(api_keys.c.created_at, api_keys.c.sid)
    if account_sid is not None:
        query = query.where(api_keys.c.account_sid == account_sid)
    rows = (await conn.execute(query)).all()
    return [ApiKeyInfo(r.sid, r.account_sid, r.friendly_name, r.created_at) for r in rows]


async def revoke_api_key(conn: AsyncConnection, sid: str) -> bool:
    """Deletes the key, as Twilio's key DELETE does; False if there was none."""
    result = await conn.execute(delete(api_keys).where(api_keys.c.sid == sid))
    return bool(result.rowcount)


async def authenticate(
    conn: AsyncConnection, box: SecretBox, username: str, password: str
) -> str | None:
    """The account a Basic credential pair belongs to, or None."""
    if username.startswith("AC"):
        query = select(accounts.c.auth_token_enc).where(accounts.c.sid == username)
        sealed = (await conn.execute(query)).scalar_one_or_none()
        token = box.open(sealed) if sealed else None
        if token is not None and hmac.compare_digest(token, password):
            return username
        return None
    if username.startswith("SK"):
        query = select(api_keys.c.account_sid, api_keys.c.secret_hash).where(
            api_keys.c.sid == username
        )
        row = (await conn.execute(query)).first()
        if row is not None and hmac.compare_digest(row.secret_hash, hash_secret(password)):
            return str(row.account_sid)
    return None
