"""The `opencomms` command as users run it: real processes, real databases."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.acceptance.server import ServerProcess, free_port, start_server, wait_ready
from tests.conftest import PG_ADMIN_URL, SKIP_PG

SIMPLE = {"to": [{"address": "+14153902337", "channel": "PHONE"}], "content": {"text": "Hi"}}


def opencomms(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opencomms", *args],
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_accounts_and_keys_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    created = opencomms("accounts", "create", "--json", "--database-url", url, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)
    assert re.match(r"^AC[0-9a-f]{32}$", account["accountSid"])
    assert re.match(r"^[0-9a-f]{32}$", account["authToken"])
    key = opencomms(
        "keys",
        "create",
        "--account",
        account["accountSid"],
        "--json",
        "--database-url",
        url,
        cwd=tmp_path,
    )
    assert key.returncode == 0, key.stderr
    api_key = json.loads(key.stdout)
    assert re.match(r"^SK[0-9a-f]{32}$", api_key["sid"])
    assert (tmp_path / "opencomms.secret").stat().st_mode & 0o077 == 0
    missing = opencomms(
        "keys", "create", "--account", "AC" + "0" * 32, "--database-url", url, cwd=tmp_path
    )
    assert missing.returncode == 1
    server = start_server(url, tmp_path, "--no-worker", env={"OPENCOMMS_SECRET_KEY": ""})
    try:
        with_key = httpx.post(
            server.base_url + "/v1/Messages", json=SIMPLE, auth=(api_key["sid"], api_key["secret"])
        )
        with_token = httpx.get(
            server.base_url + "/v1/Messages", auth=(account["accountSid"], account["authToken"])
        )
    finally:
        server.stop()
    assert with_key.status_code == 202
    assert len(with_token.json()["messages"]) == 1


def test_first_start_prints_credentials_once(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCOMMS_")}
    log = tmp_path / "first.log"
    command = [sys.executable, "-m", "opencomms", "serve", "--no-worker", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", "", "", log)
    try:
        wait_ready(server)
        text = log.read_text()
        sid = re.search(r"OPENCOMMS_ACCOUNT_SID=(AC[0-9a-f]{32})", text)
        token = re.search(r"OPENCOMMS_AUTH_TOKEN=([0-9a-f]{32})", text)
        assert sid and token, text
        answer = httpx.post(
            server.base_url + "/v1/Messages", json=SIMPLE, auth=(sid.group(1), token.group(1))
        )
        assert answer.status_code == 202
    finally:
        server.stop()
    assert (tmp_path / "opencomms.db").exists()
    again = start_server(
        "sqlite:///opencomms.db", tmp_path, "--no-worker", env={"OPENCOMMS_SECRET_KEY": ""}
    )
    try:
        assert "OPENCOMMS_AUTH_TOKEN" not in again.log.read_text()
        with_old = httpx.get(again.base_url + "/v1/Messages", auth=(sid.group(1), token.group(1)))
        assert len(with_old.json()["messages"]) == 1
    finally:
        again.stop()


@pytest.mark.skipif(SKIP_PG, reason="OPENCOMMS_SKIP_PG=1")
async def test_postgresql_is_migrated_on_purpose(tmp_path: Path) -> None:
    name = "opencomms_cli_" + secrets.token_hex(4)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        refused = opencomms(
            "serve", "--no-worker", "--database-url", url, "--port", str(free_port()), cwd=tmp_path
        )
        assert refused.returncode != 0
        assert "opencomms migrate" in refused.stderr + refused.stdout
        migrated = opencomms("migrate", "--database-url", url, cwd=tmp_path)
        assert migrated.returncode == 0, migrated.stderr
        server = start_server(url, tmp_path, "--no-worker")
        try:
            async with httpx.AsyncClient(base_url=server.base_url, auth=server.auth) as http:
                answer = await http.post("/v1/Messages", json=SIMPLE)
            assert answer.status_code == 202
        finally:
            server.stop()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
