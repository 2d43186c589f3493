"""Credentials as Twilio has them: Account SID + auth token, or API key + secret."""

import httpx

from opencomms.store import accounts
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database, open_database
from tests.api.test_send import SIMPLE
from tests.conftest import make_client, new_account


async def test_no_credentials_get_401_with_a_challenge(db: Database) -> None:
    async with make_client(db, None) as anonymous:
        response = await anonymous.get("/v1/Messages")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["errors"][0]["code"] == 20003


async def test_wrong_token_and_garbage_headers_get_401(
    db: Database, account: NewCredential
) -> None:
    async with make_client(db, None) as http:
        wrong = await http.get("/v1/Messages", auth=(account.sid, "0" * 32))
        garbage = await http.get("/v1/Messages", headers={"authorization": "Basic !!!"})
        bearer = await http.get("/v1/Messages", headers={"authorization": "Bearer x"})
    assert [r.status_code for r in (wrong, garbage, bearer)] == [401, 401, 401]


async def test_api_keys_act_for_their_account(
    db: Database, account: NewCredential, client: httpx.AsyncClient
) -> None:
    async with db.write() as conn:
        key = await accounts.create_api_key(conn, account.sid)
    sent = await client.post("/v1/Messages", json=SIMPLE)
    async with make_client(db, key) as with_key:
        listed = await with_key.get("/v1/Messages")
        assert (await with_key.get("/v1/Messages", auth=(key.sid, "f" * 32))).status_code == 401
    assert listed.status_code == 200
    ids = [m["related"][0]["id"] for m in listed.json()["messages"]]
    assert ids == [sent.json()["operationId"]]


async def test_accounts_never_see_each_other(
    db: Database, box: SecretBox, client: httpx.AsyncClient
) -> None:
    sent = (await client.post("/v1/Messages", json=SIMPLE)).json()
    message_id = (await client.get("/v1/Messages")).json()["messages"][0]["id"]
    other = await new_account(db, box)
    async with make_client(db, other) as stranger:
        assert (await stranger.get(f"/v1/Messages/{message_id}")).status_code == 404
        operation = f"/v1/Messages/Operations/{sent['operationId']}"
        assert (await stranger.get(operation)).status_code == 404
        assert (await stranger.post(operation + "/Cancel")).status_code == 404
        assert (await stranger.get("/v1/Messages")).json()["messages"] == []
        assert (await stranger.get("/v1/Messages/Operations")).json()["operations"] == []


async def test_health_needs_no_credentials(db: Database) -> None:
    async with make_client(db, None) as anonymous:
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        assert (await anonymous.get("/readyz")).json()["status"] == "ready"


def test_secrets_are_not_stored_in_clear(box: SecretBox) -> None:
    sealed = box.seal("0123456789abcdef0123456789abcdef")
    assert "0123456789abcdef" not in sealed
    assert box.open(sealed) == "0123456789abcdef0123456789abcdef"
    assert SecretBox("another key").open(sealed) is None
    assert accounts.hash_secret("s") != "s"


async def test_readiness_reports_an_unreachable_database() -> None:
    unreachable = open_database("postgresql://nobody@127.0.0.1:1/none")
    try:
        async with make_client(unreachable, None) as anonymous:
            response = await anonymous.get("/readyz")
            alive = await anonymous.get("/healthz")
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == 20503
    assert alive.status_code == 200
