"""Accounts and API keys on the local database: list, and revoke at once."""

from opencomms.cli.connection import quiet_logs
from opencomms.cli.runtime import open_ready
from opencomms.clock import rfc3339
from opencomms.config import Settings
from opencomms.store import accounts
from opencomms.store.accounts import AccountInfo, ApiKeyInfo


async def list_accounts(settings: Settings) -> list[AccountInfo]:
    quiet_logs()
    db = await open_ready(settings.database_url)
    try:
        async with db.read() as conn:
            return await accounts.list_accounts(conn)
    finally:
        await db.dispose()


async def list_keys(settings: Settings, account_sid: str | None) -> list[ApiKeyInfo]:
    quiet_logs()
    db = await open_ready(settings.database_url)
    try:
        async with db.read() as conn:
            return await accounts.list_api_keys(conn, account_sid)
    finally:
        await db.dispose()


async def revoke_key(settings: Settings, key_sid: str) -> bool:
    """Deletes the key; the server checks API keys on every request, so it fails at once."""
    quiet_logs()
    db = await open_ready(settings.database_url)
    try:
        async with db.write() as conn:
            return await accounts.revoke_api_key(conn, key_sid)
    finally:
        await db.dispose()


def account_json(account: AccountInfo) -> dict[str, object]:
    return {
        "sid": account.sid,
        "friendlyName": account.friendly_name,
        "createdAt": rfc3339(account.created_at),
        "apiKeys": account.api_keys,
    }


def key_json(key: ApiKeyInfo) -> dict[str, object]:
    return {
        "sid": key.sid,
        "accountSid": key.account_sid,
        "friendlyName": key.friendly_name,
        "createdAt": rfc3339(key.created_at),
    }
