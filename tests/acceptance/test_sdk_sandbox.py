"""The SDK and the CLI on the sandbox extensions, against a real server on both databases."""

import json

import pytest
from typer.testing import CliRunner

from opencomms.client import AsyncClient, Client, MessageStatus, ValidationError
from tests.acceptance.server import ServerProcess

# The server side lives in the console work (inbox, inbound) and the routes work (every account
# has the sandbox's default senders); until both are on this branch there is nothing to test.
pytest.importorskip("opencomms.api.sandbox", reason="the sandbox extensions are not merged yet")
pytest.importorskip("opencomms.store.inventory", reason="default senders are not merged yet")

SANDBOX_SENDER = "+15005550006"


def client_for(server: ServerProcess) -> Client:
    return Client(server.account_sid, server.auth_token, base_url=server.base_url)


def test_the_inbox_shows_what_each_phone_received(live_server: ServerProcess) -> None:
    with client_for(live_server) as client:
        numbers = ["+14155550161", "+14155550162", "+14155550163"]
        sent = client.send_messages(
            [*numbers, "+15005550001"], text="Code {{ 1 | plus: 41 }}", from_=SANDBOX_SENDER
        )
        client.wait_for_operation(sent.operation_id, interval=0.1, timeout=30)
        entries = list(client.iter_sandbox_messages(operation_id=sent.operation_id, page_size=1))
        assert sorted(e.to for e in entries) == numbers  # the refused number reached no phone
        assert {e.content.text for e in entries} == {"Code 42"}
        assert {e.from_ for e in entries} == {SANDBOX_SENDER}
        first = client.list_sandbox_messages(operation_id=sent.operation_id, page_size=2)
        assert len(first.items) == 2 and first.has_next
        for entry in entries:
            message = client.seek_message(entry.identifier or "")
            assert message.id == entry.message_id
            assert message.attempts[-1].identifier == entry.identifier
        [one] = client.list_sandbox_messages(to=numbers[0]).items
        assert one.operation_id == sent.operation_id

        client.clear_sandbox_messages(to=numbers[0])
        left = client.list_sandbox_messages(operation_id=sent.operation_id).items
        assert sorted(e.to for e in left) == numbers[1:]
        client.clear_sandbox_messages(operation_id=sent.operation_id)
        assert client.list_sandbox_messages(operation_id=sent.operation_id).items == []


def test_a_phone_replies_and_the_reply_is_an_inbound_message(live_server: ServerProcess) -> None:
    phone = "+14155550164"
    with client_for(live_server) as client:
        reply = client.send_inbound(from_=phone, to=SANDBOX_SENDER, text="Thanks!")
        assert reply.status == MessageStatus.INBOUND
        assert reply.from_.address == phone and reply.to[0].address == SANDBOX_SENDER
        assert reply.content.text == "Thanks!" and reply.session_id
        assert client.get_message(reply.id) == reply
        inbound = [m.id for m in client.iter_messages(status="INBOUND", limit=100)]
        assert reply.id in inbound
        threaded = list(client.iter_messages(session_id=reply.session_id))
        assert [m.id for m in threaded] == [reply.id]
        with pytest.raises(ValidationError) as raised:
            client.send_inbound(from_=phone, to="+14155550999", text="x")
        assert [e.context for e in raised.value.errors] == ["$.to.address"]


async def test_the_async_client_reads_and_writes_the_sandbox(live_server: ServerProcess) -> None:
    async with AsyncClient(
        live_server.account_sid, live_server.auth_token, base_url=live_server.base_url
    ) as client:
        sent = await client.send_messages(
            ["+14155550165"], text="async hello", from_=SANDBOX_SENDER
        )
        await client.wait_for_operation(sent.operation_id, interval=0.1, timeout=30)
        entries = [e async for e in client.iter_sandbox_messages(operation_id=sent.operation_id)]
        assert [e.content.text for e in entries] == ["async hello"]
        reply = await client.send_inbound(from_="+14155550165", to=SANDBOX_SENDER, text="ok")
        assert reply.status == "INBOUND"
        await client.clear_sandbox_messages(operation_id=sent.operation_id)
        assert (await client.list_sandbox_messages(operation_id=sent.operation_id)).items == []


def test_the_sandbox_commands(live_server: ServerProcess) -> None:
    from opencomms.cli.app import app

    env = {
        "OPENCOMMS_URL": live_server.base_url,
        "OPENCOMMS_ACCOUNT_SID": live_server.account_sid,
        "OPENCOMMS_AUTH_TOKEN": live_server.auth_token,
    }

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.stderr + result.stdout
        return result.stdout

    phone = "+14155550166"
    sent = json.loads(
        run("send", phone, "--text", "Your code is 7", "--from", SANDBOX_SENDER, "--json")
    )
    [operation_id] = sent["operationIds"]
    inbox = json.loads(run("sandbox", "inbox", "--to", phone, "--json"))
    assert [(e["to"], e["content"]["text"]) for e in inbox] == [(phone, "Your code is 7")]
    assert inbox[0]["operationId"] == operation_id
    assert "Your code is 7" in run("sandbox", "inbox", "--to", phone)
    replied = json.loads(
        run("sandbox", "reply", "Got it", "--from", phone, "--to", SANDBOX_SENDER, "--json")
    )
    assert replied["status"] == "INBOUND" and replied["content"] == {"text": "Got it"}
    inbound = json.loads(run("messages", "list", "--status", "inbound", "--json"))
    assert replied["id"] in [m["id"] for m in inbound]
    assert json.loads(run("sandbox", "clear", "--to", phone, "--json"))["cleared"] is True
    assert json.loads(run("sandbox", "inbox", "--to", phone, "--json")) == []
