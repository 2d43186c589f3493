"""The SDK against a real server process with its worker, on SQLite and PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from opencomms.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    Message,
    NotFoundError,
    Recipient,
    UnprocessableEntityError,
    ValidationError,
    WaitTimeout,
)
from opencomms.store.db import open_database
from opencomms.store.tables import attempts
from tests.acceptance.server import ServerProcess

NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara"]


def client_for(server: ServerProcess) -> Client:
    return Client(server.account_sid, server.auth_token, base_url=server.base_url)


def recipients() -> list[Recipient]:
    return [
        Recipient(f"+1415555{1000 + i}", variables={"name": name}) for i, name in enumerate(NAMES)
    ]


def test_send_follow_and_read_every_message(live_server: ServerProcess) -> None:
    with client_for(live_server) as client:
        accepted = client.send_messages(recipients(), text="Hi {{ name }}", tags={"tour": "sdk"})
        assert accepted.operation_location.endswith(
            f"/v1/Messages/Operations/{accepted.operation_id}"
        )
        updates = list(client.watch_operation(accepted.operation_id, interval=0.1, timeout=30))
        final = updates[-1]
        assert final.status == "COMPLETED" and final.is_final
        assert final.stats.total == 5 and final.stats.delivered == 5 and final.stats.final == 5
        assert all(not u.is_final for u in updates[:-1])

        first = client.list_messages(operation_id=accepted.operation_id, page_size=2)
        assert len(first.items) == 2 and first.has_next
        listed = list(client.iter_messages(operation_id=accepted.operation_id, page_size=2))
        assert len({m.id for m in listed}) == 5
        assert [m.id for m in listed[:2]] == [m.id for m in first.items]
        assert len(list(client.iter_messages(operation_id=accepted.operation_id, limit=3))) == 3
        by_tag = list(client.iter_messages(tags={"tour": "sdk"}, status="delivered"))
        assert {m.id for m in by_tag} == {m.id for m in listed}

        texts = set()
        for summary in listed:
            assert summary.operation_id == accepted.operation_id
            message = client.get_message(summary.id)
            assert isinstance(message, Message) and message.is_final
            assert message.attempts[-1].status == "DELIVERED"
            # With no `from`, the default senders are used, RCS before SMS.
            assert message.attempts[-1].from_.channel in ("RCS", "SMS")
            assert message.tags == {"tour": "sdk"}
            texts.add(message.content.text)
        assert texts == {f"Hi {name}" for name in NAMES}
        operations = [o.id for o in client.iter_operations(limit=50)]
        assert accepted.operation_id in operations


def test_failures_are_read_back_with_their_codes(live_server: ServerProcess) -> None:
    with client_for(live_server) as client:
        accepted = client.send_messages(["+15005550001", "+14155550123"], text="x")
        client.wait_for_operation(accepted.operation_id, interval=0.1, timeout=30)
        [failed] = client.list_messages(operation_id=accepted.operation_id, status="FAILED").items
        message = client.get_message(failed.id)
        error = message.attempts[-1].error
        assert error is not None and error.code == 21211
        assert message.to[0].address == "+15005550001"


def test_seek_finds_the_message_of_an_identifier(live_server: ServerProcess) -> None:
    with client_for(live_server) as client:
        accepted = client.send_messages(["+14155550124"], text="seek me")
        client.wait_for_operation(accepted.operation_id, interval=0.1, timeout=30)
        [summary] = client.list_messages(operation_id=accepted.operation_id).items
        found = client.seek_message(asyncio.run(_external_id(live_server, summary.id)))
        assert found.id == summary.id and found.content.text == "seek me"
        with pytest.raises(NotFoundError) as raised:
            client.seek_message("SM" + "0" * 32)
        assert raised.value.code == 20404


def test_cancel_a_scheduled_send(live_server: ServerProcess) -> None:
    with client_for(live_server) as client:
        later = datetime.now(UTC) + timedelta(hours=1)
        accepted = client.send_messages(["+14155550125"], text="later", send_at=later)
        scheduled = client.get_operation(accepted.operation_id)
        assert scheduled.status == "SCHEDULED" and scheduled.stats.scheduled == 1
        [summary] = client.list_messages(operation_id=accepted.operation_id).items
        assert summary.scheduled_for == later.replace(
            microsecond=(later.microsecond // 1000) * 1000
        )
        with pytest.raises(WaitTimeout):
            client.wait_for_operation(accepted.operation_id, interval=0.05, timeout=0.2)
        assert client.cancel_operation(accepted.operation_id).operation_id == accepted.operation_id
        canceled = client.get_operation(accepted.operation_id)
        assert canceled.status == "CANCELED" and canceled.stats.canceled == 1
        assert client.wait_for_operation(accepted.operation_id, timeout=1).status == "CANCELED"


def test_errors_carry_the_apis_list(live_server: ServerProcess) -> None:
    with client_for(live_server) as client:
        with pytest.raises(ValidationError) as raised:
            client.send_messages(
                ["+1", Recipient("+14155550126"), Recipient("+14155550127", variables={"x": 1})],
                text="Hi {{ name }}",
            )
        contexts = {e.context for e in raised.value.errors}
        assert "$.to[0].address" in contexts
        assert "$.to[1].variables.name" in contexts
        assert {e.code for e in raised.value.errors if e.context == "$.to[0].address"} == {21614}
        assert raised.value.status_code == 400
        with pytest.raises(ValidationError) as bad_page:
            client.list_operations(page_size=0)
        assert [e.context for e in bad_page.value.errors] == ["$.pageSize"]
        with pytest.raises(NotFoundError):
            client.get_message("comms_message_01h9krwprkeee8fzqspvwy6nq8")
        with pytest.raises(NotFoundError):
            client.cancel_operation("comms_operation_01h9krwprkeee8fzqspvwy6nq8")
    wrong = Client(live_server.account_sid, "wrong", base_url=live_server.base_url)
    with wrong, pytest.raises(AuthenticationError) as denied:
        wrong.list_messages()
    assert denied.value.code == 20003


async def test_the_async_client_does_the_same(live_server: ServerProcess) -> None:
    async with AsyncClient(
        live_server.account_sid, live_server.auth_token, base_url=live_server.base_url + "/v1"
    ) as client:
        accepted = await client.send_messages(recipients(), text="Hey {{ name }}")
        final = await client.wait_for_operation(accepted.operation_id, interval=0.1, timeout=30)
        assert final.status == "COMPLETED" and final.stats.delivered == 5
        ids = [
            m.id
            async for m in client.iter_messages(operation_id=accepted.operation_id, page_size=2)
        ]
        assert len(set(ids)) == 5
        message = await client.get_message(ids[0])
        assert message.content.text in {f"Hey {name}" for name in NAMES}
        seen = [o.id async for o in client.iter_operations(page_size=1, limit=2)]
        assert len(seen) == 2
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        scheduled = await client.send_messages(["+14155550128"], text="x", send_at=later)
        await client.cancel_operation(scheduled.operation_id)
        assert (await client.get_operation(scheduled.operation_id)).status == "CANCELED"
        with pytest.raises(ValidationError) as raised:
            await client.send_messages(["+1"], text="x")
        assert raised.value.errors[0].context == "$.to[0].address"


async def _external_id(server: ServerProcess, message_id: str) -> str:
    """The sandbox's id for the hand-off, as an operator would read it from the database."""
    db = open_database(server.database_url)
    try:
        async with db.read() as conn:
            query = select(attempts.c.external_id).where(attempts.c.message_id == message_id)
            return str((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


def test_an_idempotency_key_makes_a_send_happen_once(live_server: ServerProcess) -> None:
    key = f"sdk-{datetime.now(UTC).timestamp()}"
    with client_for(live_server) as client:
        first = client.send_messages(["+14155551200"], text="Once", idempotency_key=key)
        again = client.send_messages(["+14155551200"], text="Once", idempotency_key=key)
        with pytest.raises(UnprocessableEntityError) as changed:
            client.send_messages(["+14155551200"], text="Twice?", idempotency_key=key)
        sent = list(client.iter_messages(operation_id=first.operation_id))
    assert again.operation_id == first.operation_id
    assert changed.value.errors[0].code == 20422
    assert len(sent) == 1
