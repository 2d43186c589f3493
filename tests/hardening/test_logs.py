"""What the logs hold: a line per request with its id, timestamps everywhere, and never a
phone number, an e-mail address, a message text or a secret."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from opencomms import logs
from opencomms.store.db import Database
from opencomms.store.tables import accounts
from tests.hardening.processes import launch

NUMBER = "+14155550142"
EMAIL = "ada.lovelace@example.org"
TEXT = "PINEAPPLE-TEXT-7781"
BODY = {
    "to": [{"address": NUMBER, "channel": "PHONE", "variables": {"mail": EMAIL}}],
    "content": {"text": TEXT + " {{ mail }}"},
}


def test_masking() -> None:
    line = f"to {NUMBER} and {EMAIL}, token gAAAAABnXyZ0123456789abcdefghij== key {'ab' * 16}"
    masked = logs.mask(line)
    assert NUMBER not in masked and "+141***42" in masked
    assert EMAIL not in masked and "***@example.org" in masked
    assert "gAAAAA" not in masked and ("ab" * 16) not in masked
    assert logs.mask("AC" + "ab" * 16) == "AC" + "ab" * 16  # account ids stay readable


async def test_database_errors_carry_no_parameters(db: Database) -> None:
    secret = "hunter2-" + "7" * 24
    with pytest.raises(Exception) as raised:
        async with db.write() as conn:
            row = {"sid": "dup", "auth_token_enc": secret, "friendly_name": NUMBER, "created_at": 1}
            await conn.execute(insert(accounts), [row, row])
    record = logs.logging.makeLogRecord(
        {"msg": "failed", "exc_info": (raised.type, raised.value, raised.tb), "levelno": 40}
    )
    for formatter in (logs.PlainFormatter(), logs.JsonFormatter()):
        line = formatter.format(record)
        assert secret not in line and NUMBER not in line


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_a_real_server_logs_requests_and_no_personal_data(
    db_url: str, tmp_path: Path, fmt: str
) -> None:
    server = launch(db_url, tmp_path, env={"OPENCOMMS_LOG_FORMAT": fmt})
    try:
        with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=30) as http:
            sent = http.post("/v1/Messages", json=BODY, headers={"X-Request-Id": "req-42"})
            assert sent.status_code == 202
            assert sent.headers["x-request-id"] == "req-42"
            refused = http.post("/v1/Messages", json={**BODY, "to": [{"address": NUMBER}]})
            assert refused.status_code == 400
            assert len(refused.headers["x-request-id"]) == 16
            http.get(f"/v1/Messages/Seek/{NUMBER}")
            operation = "/v1" + sent.json()["operationLocation"].split("/v1", 1)[1]
            for _ in range(100):  # the worker delivers it meanwhile: its lines count too
                if http.get(operation).json()["stats"]["delivered"] == 1:
                    break
                time.sleep(0.1)
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    for private in (NUMBER, NUMBER[1:], EMAIL, TEXT, server.auth_token):
        assert private not in log
    lines = [line for line in log.splitlines() if line.strip()]
    if fmt == "json":
        entries = [json.loads(line) for line in lines]
        assert all(entry["ts"].endswith("Z") for entry in entries)
        requests = [e for e in entries if e["logger"] == "opencomms.request"]
        assert any(
            e["request_id"] == "req-42" and e["account"] == server.account_sid for e in requests
        )
        assert any(e["msg"].startswith("POST /v1/Messages 400") for e in requests)
        assert any(e["logger"] == "opencomms.dispatch" for e in entries)
    else:
        # Every record starts with its timestamp (a multi-line message continues below it).
        untimed = [line for line in lines if re.match(r"(INFO|WARNING|ERROR|DEBUG)\b", line)]
        assert not untimed, untimed[:3]
        assert sum(bool(re.match(r"\d{4}-\d\d-\d\dT", line)) for line in lines) > 5
        assert any(
            "POST /v1/Messages 202" in line and "request_id=req-42" in line for line in lines
        )


@pytest.mark.slow
def test_a_failed_start_prints_one_line_without_secrets(tmp_path: Path) -> None:
    url = "postgresql://admin:hunter2secret@127.0.0.1:1/opencomms"
    result = subprocess.run(
        [sys.executable, "-m", "opencomms", "serve", "--database-url", url],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"OPENCOMMS_SECRET_KEY": "k", "PATH": "/usr/bin:/bin"},
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "hunter2secret" not in output
    assert "error:" in output
