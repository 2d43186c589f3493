"""`opencomms pools`: the same service functions as /v1/SenderPools, from the command line."""

import asyncio
import json
from pathlib import Path

from opencomms.store.db import open_database
from tests.acceptance.test_cli import opencomms
from tests.api.inventory import EXAMPLE_IDS, declare, declared


async def _declare(database_url: str, account_sid: str) -> None:
    db = open_database(database_url)
    try:
        await declare(db, declared(account_sid, examples=True))
    finally:
        await db.dispose()


def test_pools_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    url = ["--database-url", db_url]
    created = opencomms("accounts", "create", "--json", *url, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)["accountSid"]
    asyncio.run(_declare(db_url, account))
    mine = ["--account", account, *url]

    refused = opencomms(
        "pools",
        "create",
        *mine,
        "--sender",
        EXAMPLE_IDS[0],
        "--sender",
        "comms_sender_x",
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert "$.senders[1].senderId" in refused.stderr
    listed = opencomms("pools", "list", "--json", *mine, cwd=tmp_path)
    assert json.loads(listed.stdout) == []

    made = opencomms(
        "pools",
        "create",
        "--json",
        *mine,
        "--name",
        "Ops",
        "--sender",
        EXAMPLE_IDS[0],
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    pool_id = json.loads(made.stdout)["senderPoolId"]
    listed = opencomms("pools", "list", "--json", *mine, cwd=tmp_path)
    assert json.loads(listed.stdout) == [
        {"id": pool_id, "name": "Ops", "tags": {}, "senders": [EXAMPLE_IDS[0]]}
    ]
    plain = opencomms("pools", "list", *mine, cwd=tmp_path)
    assert pool_id in plain.stdout and "1 senders" in plain.stdout
