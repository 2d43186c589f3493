"""The client commands against a real server process, and the local account commands."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opencomms.cli.app import app
from opencomms.client import AuthenticationError, Client
from tests.acceptance.server import ServerProcess

PEOPLE = """phone,name,city
+14155550141,Ada,London
+14155550142,Grace,
+15005550001,Alan,Paris
"""


def run(server: ServerProcess, *args: str, env: dict[str, str] | None = None) -> Any:
    environment = {
        "OPENCOMMS_URL": server.base_url,
        "OPENCOMMS_ACCOUNT_SID": server.account_sid,
        "OPENCOMMS_AUTH_TOKEN": server.auth_token,
        **(env or {}),
    }
    return CliRunner().invoke(app, list(args), env=environment)


def run_json(server: ServerProcess, *args: str) -> Any:
    result = run(server, *args, "--json")
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_send_from_csv_and_watch_to_the_end(live_server: ServerProcess, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    template = tmp_path / "hello.liquid"
    template.write_text('Hi {{ name }} from {{ city | default: "home" }} ({{ team }})')
    sent = run_json(
        live_server,
        "send",
        "--csv",
        str(people),
        "--template",
        str(template),
        "--var",
        "team=ops",
        "--tag",
        "via=cli",
        "--interval",
        "0.1",
        "--timeout",
        "30",
    )
    [operation_id] = sent["operationIds"]
    assert sent["summary"] == {"DELIVERED": 2, "FAILED": 1}
    [operation] = sent["operations"]
    assert operation["status"] == "COMPLETED" and operation["stats"]["total"] == 3

    listed = run_json(live_server, "messages", "list", "--operation", operation_id)
    assert {m["to"][0]["address"] for m in listed} == {
        "+14155550141",
        "+14155550142",
        "+15005550001",
    }
    assert all(m["tags"] == {"via": "cli"} for m in listed)
    texts = {run_json(live_server, "messages", "get", m["id"])["content"]["text"] for m in listed}
    assert texts == {
        "Hi Ada from London (ops)",
        "Hi Grace from home (ops)",
        "Hi Alan from Paris (ops)",
    }
    failed = run_json(
        live_server, "messages", "list", "--operation", operation_id, "--status", "failed"
    )
    [message] = [run_json(live_server, "messages", "get", m["id"]) for m in failed]
    assert message["attempts"][-1]["error"]["code"] == 21211
    by_tag = run_json(live_server, "messages", "list", "--tag", "via:cli", "--limit", "2")
    assert len(by_tag) == 2

    raw = httpx.get(f"{live_server.base_url}/v1/Messages/{message['id']}", auth=live_server.auth)
    assert message == raw.json(), "--json prints the API's own resource, field for field"

    table = run(live_server, "messages", "get", message["id"])
    assert table.exit_code == 0 and "21211" in table.stdout and message["id"] in table.stdout


def test_operations_commands(live_server: ServerProcess) -> None:
    sent = run(live_server, "send", "+14155550143", "+14155550144", "--text", "hi", "--no-wait")
    assert sent.exit_code == 0, sent.stderr
    operation_id = sent.stdout.strip()
    assert operation_id.startswith("comms_operation_")
    watched = run_json(live_server, "operations", "watch", operation_id, "--interval", "0.1")
    assert watched["operations"][0]["status"] == "COMPLETED"
    assert watched["summary"] == {"DELIVERED": 2}
    fetched = run_json(live_server, "operations", "get", operation_id)
    assert fetched["id"] == operation_id and fetched["stats"]["delivered"] == 2
    listed = run_json(live_server, "operations", "list", "--limit", "100")
    assert operation_id in [o["id"] for o in listed]
    human = run(live_server, "operations", "get", operation_id)
    assert "COMPLETED" in human.stdout and "DELIVERED" in human.stdout

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    scheduled = run_json(
        live_server, "send", "+14155550145", "--text", "later", "--schedule", tomorrow
    )
    assert scheduled.keys() == {"operationIds"}, "a send scheduled ahead does not wait by default"


def test_a_scheduled_send_can_be_followed_until_the_wait_runs_out(
    live_server: ServerProcess,
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    result = run(
        live_server,
        "send",
        "+14155550146",
        "--text",
        "x",
        "--schedule",
        later,
        "--wait",
        "--timeout",
        "0.3",
        "--interval",
        "0.1",
        "--json",
    )
    assert result.exit_code == 3
    assert json.loads(result.stdout)["summary"] == {"SCHEDULED": 1}
    assert "still running" in result.stderr


def test_errors_are_shown_with_the_apis_list(live_server: ServerProcess, tmp_path: Path) -> None:
    bad = run(live_server, "send", "+1", "--text", "Hi {{ name }}", "--no-wait")
    assert bad.exit_code == 1
    assert "21614 at $.to[0].address" in bad.stderr
    assert "$.to[0].variables.name" in bad.stderr
    denied = run(live_server, "operations", "list", env={"OPENCOMMS_AUTH_TOKEN": "wrong"})
    assert denied.exit_code == 1 and "20003" in denied.stderr
    missing = run(live_server, "messages", "get", "comms_message_01h9krwprkeee8fzqspvwy6nq8")
    assert missing.exit_code == 1 and "20404" in missing.stderr
    both = run(live_server, "send", "+14155550147", "--csv", "x.csv", "--text", "x")
    assert both.exit_code == 2 and "not both" in both.stderr
    no_column = tmp_path / "bad.csv"
    no_column.write_text("name\nAda\n")
    unreadable = run(live_server, "send", "--csv", str(no_column), "--text", "x")
    assert unreadable.exit_code == 2 and "needs a column" in unreadable.stderr
    unconfigured = CliRunner().invoke(
        app, ["operations", "list"], env={"OPENCOMMS_ACCOUNT_SID": "", "OPENCOMMS_AUTH_TOKEN": ""}
    )
    assert unconfigured.exit_code == 2 and "credentials are needed" in unconfigured.stderr


def local(*args: str) -> Any:
    """A local-database command, in this process (as the server's operator runs it)."""
    return CliRunner().invoke(app, list(args), env={"OPENCOMMS_SECRET_KEY": "acceptance-key"})


def test_accounts_and_keys_on_the_servers_database(live_server: ServerProcess) -> None:
    url = live_server.database_url
    sid = live_server.account_sid
    created = local("keys", "create", "--account", sid, "--friendly-name", "ci", "--json",
                    "--database-url", url)  # fmt: skip
    assert created.exit_code == 0, created.stderr
    key = json.loads(created.stdout)
    accounts = json.loads(local("accounts", "list", "--json", "--database-url", url).stdout)
    mine = next(a for a in accounts if a["sid"] == sid)
    assert mine["apiKeys"] >= 1 and set(mine) == {"sid", "friendlyName", "createdAt", "apiKeys"}
    keys = json.loads(
        local("keys", "list", "--account", sid, "--json", "--database-url", url).stdout
    )
    listed = next(k for k in keys if k["sid"] == key["sid"])
    assert (listed["accountSid"], listed["friendlyName"]) == (sid, "ci")
    assert "secret" not in listed
    with Client(key["sid"], key["secret"], base_url=live_server.base_url) as with_key:
        with_key.list_operations()
        revoked = local("keys", "revoke", key["sid"], "--json", "--database-url", url)
        assert revoked.exit_code == 0, revoked.stderr
        assert json.loads(revoked.stdout) == {"sid": key["sid"], "revoked": True}
        with pytest.raises(AuthenticationError):
            with_key.list_operations()
    again = local("keys", "revoke", key["sid"], "--database-url", url)
    assert again.exit_code == 1 and "no API key" in again.stderr
    table = local("accounts", "list", "--database-url", url)
    assert sid in table.stdout
    keys_table = local("keys", "list", "--database-url", url)
    assert key["sid"] not in keys_table.stdout


def test_a_send_past_the_request_limit_is_split_and_followed_together(
    live_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opencomms.cli import send_command

    monkeypatch.setattr(send_command, "MAX_RECIPIENTS_PER_REQUEST", 2)
    numbers = [f"+1415555017{n}" for n in range(5)]
    result = run(live_server, "send", *numbers, "--text", "split", "--interval", "0.1", "--json")
    assert result.exit_code == 0, result.stderr
    sent = json.loads(result.stdout)
    assert len(sent["operationIds"]) == 3 and sent["summary"] == {"DELIVERED": 5}
    assert [o["stats"]["total"] for o in sent["operations"]] == [2, 2, 1]
    assert "5/5" in result.stderr  # the progress bar counts messages over all three


def test_text_from_users_is_shown_as_is(live_server: ServerProcess) -> None:
    sent = run(live_server, "send", "+14155550180", "--text", "[red]alert[/red]", "--no-wait")
    [listed] = run_json(live_server, "messages", "list", "--operation", sent.stdout.strip())
    shown = run(live_server, "messages", "get", listed["id"])
    assert "[red]alert[/red]" in shown.stdout
