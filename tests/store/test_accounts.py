"""Listing accounts and keys, and revoking keys, on both databases."""

from opencomms.store import accounts
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database
from tests.api.test_send import SIMPLE
from tests.conftest import make_client, new_account


async def test_accounts_and_keys_are_listed_without_secrets(db: Database, box: SecretBox) -> None:
    first = await new_account(db, box)
    second = await new_account(db, box)
    async with db.write() as conn:
        key_a = await accounts.create_api_key(conn, first.sid, "ci")
        key_b = await accounts.create_api_key(conn, first.sid)
        await accounts.create_api_key(conn, second.sid)
        listed = {a.sid: a for a in await accounts.list_accounts(conn)}
        keys = await accounts.list_api_keys(conn, first.sid)
        every_key = await accounts.list_api_keys(conn)
    assert listed[first.sid].api_keys == 2 and listed[second.sid].api_keys == 1
    assert {k.sid for k in keys} == {key_a.sid, key_b.sid}
    assert {k.friendly_name for k in keys} == {"ci", ""}
    assert {key_a.sid, key_b.sid} <= {k.sid for k in every_key}
    assert not any(first.secret in repr(a) for a in listed.values())
    assert not any(key_a.secret in repr(k) for k in every_key)


async def test_a_revoked_key_fails_on_the_next_request(db: Database, box: SecretBox) -> None:
    account = await new_account(db, box)
    async with db.write() as conn:
        key = await accounts.create_api_key(conn, account.sid)
    async with make_client(db, key) as with_key:
        assert (await with_key.post("/v1/Messages", json=SIMPLE)).status_code == 202
        assert (await with_key.get("/v1/Messages")).status_code == 200
        async with db.write() as conn:
            assert await accounts.revoke_api_key(conn, key.sid)
            assert not await accounts.revoke_api_key(conn, key.sid)
        refused = await with_key.get("/v1/Messages")
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == 20003
    async with db.read() as conn:
        assert await accounts.list_api_keys(conn, account.sid) == []
