"""`opencomms send` without --url: straight into the configured database, as users run it
(real processes, both databases), checked and stored exactly as `POST /Messages` does."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opencomms.client import Client
from tests.acceptance.server import ServerProcess

PEOPLE = "phone,name\n+14155550161,Ada\n+15005550001,Alan\n+14155550162,Grace\n"


def opencomms(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    # No OPENCOMMS_URL: the send goes to the database. No credentials from the environment
    # either, unless a test names them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCOMMS_")}
    env["OPENCOMMS_SECRET_KEY"] = "acceptance-key"
    return subprocess.run(
        [sys.executable, "-m", "opencomms", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def send_json(server: ServerProcess, cwd: Path, *args: str) -> Any:
    sent = opencomms(
        "send", *args, "--json", "--database-url", server.database_url,
        "--account-sid", server.account_sid, "--interval", "0.1", "--timeout", "60", cwd=cwd,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    return json.loads(sent.stdout)


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE)
    return path


def check_delivered(server: ServerProcess, sent: Any) -> None:
    """What the API shows of a local send: the same messages a POST would have made."""
    [operation_id] = sent["operationIds"]
    assert sent["summary"] == {"DELIVERED": 2, "FAILED": 1}
    assert sent["operations"][0]["status"] == "COMPLETED"
    with Client(*server.auth, base_url=server.base_url) as client:
        listed = list(client.iter_messages(operation_id=operation_id))
        texts = {client.get_message(m.id).content.text for m in listed}
        inbox = list(client.iter_sandbox_messages(operation_id=operation_id))
    assert texts == {"Hi Ada", "Hi Alan", "Hi Grace"}
    assert {m.from_.address for m in listed} == {"+15005550006"}
    assert {m.to for m in inbox} == {"+14155550161", "+14155550162"}


def test_deliver_runs_a_worker_in_the_command(
    server: ServerProcess, people: Path, tmp_path: Path
) -> None:
    sent = send_json(
        server, tmp_path, "--csv", str(people), "--text", "Hi {{ name }}",
        "--from", "+15005550006", "--deliver",
    )  # fmt: skip
    check_delivered(server, sent)


def test_a_scheduled_local_send_waits_for_its_time(server: ServerProcess, tmp_path: Path) -> None:
    at = datetime.now(UTC) + timedelta(seconds=3)
    sent = send_json(
        server, tmp_path, "+14155550167", "--text", "Later", "--deliver",
        "--schedule", at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )  # fmt: skip
    assert sent["summary"] == {"DELIVERED": 1}
    [operation_id] = sent["operationIds"]
    with Client(*server.auth, base_url=server.base_url) as client:
        [message] = client.iter_messages(operation_id=operation_id)
        [delivered] = client.iter_sandbox_messages(operation_id=operation_id)
    assert message.scheduled_for is not None and message.scheduled_for >= at.replace(microsecond=0)
    assert delivered.delivered_at >= at - timedelta(milliseconds=1)


def test_without_a_worker_it_says_so(server: ServerProcess, tmp_path: Path) -> None:
    # No process of this module runs a worker on the database (the one test with a running
    # worker has a module of its own: PostgreSQL's database is shared by the test session).
    waited = opencomms(
        "send", "+14155550163", "--text", "Hello", "--database-url", server.database_url,
        "--account-sid", server.account_sid, "--timeout", "7", cwd=tmp_path,
    )  # fmt: skip
    assert waited.returncode == 3, waited.stderr
    operation_id = waited.stdout.split()[0]
    assert operation_id.startswith("comms_operation_")
    assert "no worker seems to be running" in waited.stderr
    assert "--deliver" in waited.stderr
    assert "QUEUED" in waited.stdout  # the summary of where it stands
    with Client(*server.auth, base_url=server.base_url) as client:
        assert client.get_operation(operation_id).stats.queued == 1
    # Through a server that runs no worker, the same notice, naming the server's ways out.
    remote = opencomms(
        "send", "+14155550163", "--text", "Hello", "--url", server.base_url,
        "--account-sid", server.account_sid, "--auth-token", server.auth_token,
        "--timeout", "7", cwd=tmp_path,
    )  # fmt: skip
    assert remote.returncode == 3, remote.stderr
    assert "is the server's worker running?" in remote.stderr


def test_refused_as_the_api_refuses_with_nothing_written(
    server: ServerProcess, tmp_path: Path
) -> None:
    refused = opencomms(
        "send", "+1", "+14155550164", "--text", "Hi {{ name }}",
        "--schedule", "2999-01-01T00:00:00Z", "--database-url", server.database_url,
        "--account-sid", server.account_sid, cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "21614 at $.to[0].address" in refused.stderr
    assert "20422 at $.to[1].variables.name" in refused.stderr
    assert "$.schedule" in refused.stderr
    with Client(*server.auth, base_url=server.base_url) as client:
        assert list(client.iter_messages()) == []


def test_which_account(server: ServerProcess, tmp_path: Path) -> None:
    url = server.database_url
    created = opencomms("accounts", "create", "--json", "--database-url", url, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    base = ("send", "+14155550165", "--text", "Hi", "--no-wait", "--database-url", url)
    if url.startswith("sqlite"):  # PostgreSQL's database is shared with other tests' accounts
        ambiguous = opencomms(*base, cwd=tmp_path)
        assert ambiguous.returncode == 2
        assert "2 accounts" in ambiguous.stderr and "--account-sid" in ambiguous.stderr
    unknown = opencomms(*base, "--account-sid", "AC" + "0" * 32, cwd=tmp_path)
    assert unknown.returncode == 2 and "no account AC" in unknown.stderr
    key = opencomms(
        "keys", "create", "--account", server.account_sid, "--json", "--database-url", url,
        cwd=tmp_path,
    )  # fmt: skip
    by_key = opencomms(
        *base, "--json", "--account-sid", json.loads(key.stdout)["sid"], cwd=tmp_path
    )
    assert by_key.returncode == 0, by_key.stderr
    [operation_id] = json.loads(by_key.stdout)["operationIds"]
    with Client(*server.auth, base_url=server.base_url) as client:
        assert client.get_operation(operation_id).stats.total == 1
    both = opencomms(*base, "--url", server.base_url, "--deliver", cwd=tmp_path)
    assert both.returncode == 2 and "--deliver" in both.stderr


def test_a_fresh_sqlite_file_just_works(tmp_path: Path) -> None:
    """No server ever started: the file is made, migrated, and the send delivered."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert opencomms("accounts", "create", "--database-url", url, cwd=tmp_path).returncode == 0
    sent = opencomms(
        "send", "+14155550166", "--text", "Hi", "--deliver", "--database-url", url, cwd=tmp_path
    )
    assert sent.returncode == 0, sent.stderr
    assert "DELIVERED" in sent.stdout and "total" in sent.stdout
