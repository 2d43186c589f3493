"""Emails through dispatch: the sandbox mailbox and a real SMTP server process."""

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opencomms import ids
from opencomms.channels.smtp import SmtpChannel, SmtpRouteConfig
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.domain.emails import SendEmailsCommand, prepare_emails, recipient, stored_content
from opencomms.store import emails, sends
from opencomms.store.db import Database
from tests.channels.smtp.conftest import smtp_server
from tests.dispatch.helpers import (
    ACCOUNT,
    FakeClock,
    assert_operation_consistent,
    attempt_rows,
    dispatcher,
    dispatcher_on,
    drain,
    ensure_account,
    message_rows,
)

FROM = {"address": "shop@example.com", "name": "The Shop"}


async def send_emails(
    db: Database, *addresses: str, text: str = "Hello.", to: list[dict[str, str]] | None = None
) -> str:
    """Stores a send exactly as POST /v1/Emails does; returns the operation id."""
    body: dict[str, Any] = {
        "from": FROM,
        "to": to or [{"address": a, "name": a.split("@")[0].title()} for a in addresses],
        "content": {
            "subject": "Hi {{ n | default: 'there' }}",
            "html": "<p>Hello</p>",
            "text": text,
        },
    }
    command = SendEmailsCommand(
        [recipient(item) for item in body["to"]],
        body["content"],
        FROM["address"],
        FROM["name"],
    )
    async with db.write() as conn:
        await ensure_account(conn)  # with the default senders: `*` for EMAIL, on "sandbox"
        available = await sends.account_senders(conn, ACCOUNT, None)
    prepared = prepare_emails(command, available, datetime.now(UTC))
    operation_id = ids.operation_id()
    async with db.write() as conn:
        await emails.insert_emails(
            conn,
            account_sid=ACCOUNT,
            operation_id=operation_id,
            prepared=prepared,
            content=stored_content(command),
            sender=FROM,
            now=now_ms(),
        )
    return operation_id


async def test_the_sandbox_mailbox_plays_its_script(db: Database) -> None:
    operation_id = await send_emails(
        db, "ada@example.com", "bounce@example.com", "fail@example.com"
    )
    async with dispatcher(db, FakeClock()) as worker:
        await drain(worker)
    rows = {r["recipient"]: r for r in await message_rows(db, operation_id)}
    fates = {loads_address(k): (r["status"], r["error_code"]) for k, r in rows.items()}
    assert fates == {
        "ada@example.com": ("DELIVERED", None),
        "bounce@example.com": ("UNDELIVERED", 30005),
        "fail@example.com": ("FAILED", 30007),
    }
    ada = next(r for k, r in rows.items() if "ada@" in k)
    [attempt] = await attempt_rows(db, ada["id"])
    assert attempt["external_id"] == f"{ada['id']}@sandbox.opencomms.local"
    assert await assert_operation_consistent(db, operation_id) == "COMPLETED"


async def test_an_email_text_may_be_longer_than_an_sms(db: Database) -> None:
    operation_id = await send_emails(db, "long@example.com", text="Hello. " * 300)
    async with dispatcher(db, FakeClock()) as worker:
        await drain(worker)
    [row] = await message_rows(db, operation_id)
    assert (row["status"], row["error_code"]) == ("DELIVERED", None)


async def test_emails_reach_a_real_smtp_server_through_dispatch(
    db: Database, tmp_path: Path
) -> None:
    with smtp_server(tmp_path / "spool.jsonl") as server:
        channel = SmtpChannel(SmtpRouteConfig(host="127.0.0.1", port=server.port))
        # The default EMAIL sender's route is "sandbox": here the SMTP channel plays it.
        worker = Dispatcher(db, {"sandbox": channel}, WorkerConfig(worker_id="w-email"))
        operation_id = await send_emails(db, "ada@example.com", "reject@example.com")
        async with worker:
            await drain(worker)
        received = server.received()
    rows = await message_rows(db, operation_id)
    assert sorted((r["status"], r["error_code"]) for r in rows) == [
        ("DELIVERED", None),
        ("FAILED", 30005),
    ]
    assert [r["to"] for r in received] == [["ada@example.com"]]


async def test_recipient_names_reach_the_to_header_byte_for_byte(
    db: Database, tmp_path: Path
) -> None:
    zoe = "Zoë Ñandú"
    to = [
        {"address": "ada@example.com", "name": "Ada Lovelace"},
        {"address": "jane@example.com", "name": "Doe, Jane"},
        {"address": "zoe@example.com", "name": zoe},
        {"address": "bob@example.com"},
        # Cut after the body the first time: the retry renders nothing again, it sends the
        # stored content, which must still carry the name.
        {"address": "drop@example.com", "name": "Drew Drop"},
    ]
    clock = FakeClock()
    with smtp_server(tmp_path / "spool.jsonl") as server:
        channel = SmtpChannel(SmtpRouteConfig(host="127.0.0.1", port=server.port))
        operation_id = await send_emails(db, to=to)
        async with dispatcher_on(db, clock, channel) as worker:
            await drain(worker)
            for _ in range(5):
                clock.advance(3600)  # past the retry's backoff
                await drain(worker)
        received = server.received()
    rows = await message_rows(db, operation_id)
    assert {r["status"] for r in rows} == {"DELIVERED"}
    lines = {
        r["to"][0]: next(line for line in r["data"].split(b"\r\n") if line.startswith(b"To:"))
        for r in received
    }
    encoded = base64.b64encode(zoe.encode()).decode()
    assert lines == {
        "ada@example.com": b"To: Ada Lovelace <ada@example.com>",
        "jane@example.com": b'To: "Doe, Jane" <jane@example.com>',
        "zoe@example.com": f"To: =?utf-8?b?{encoded}?= <zoe@example.com>".encode(),
        "bob@example.com": b"To: bob@example.com",
        "drop@example.com": b"To: Drew Drop <drop@example.com>",
    }
    assert len(received) == 5  # the dropped first try never reached the spool


async def test_a_routes_mps_holds_across_workers(db: Database, tmp_path: Path) -> None:
    """Two workers (two dispatchers, each with its own SMTP channel, as two processes have)
    share the route's schedule through the database: 20 emails at mps = 10 take about two
    seconds, not one as two per-process pacers would allow."""
    mps, count = 10.0, 20
    route = f"relay-{uuid.uuid4().hex[:8]}"
    addresses = [f"user{n}@example.com" for n in range(count)]
    with smtp_server(tmp_path / "spool.jsonl") as server:
        config = SmtpRouteConfig(host="127.0.0.1", port=server.port, mps=mps)
        workers = [
            dispatcher_on(
                db, now_ms, SmtpChannel(config, name=route), worker_id=f"w-{n}", batch_size=10
            )
            for n in (1, 2)
        ]
        await send_emails(db, *addresses)
        async with workers[0], workers[1]:
            handled = await asyncio.gather(*(drain(w) for w in workers))
        received = server.received()
    assert sorted(r["to"][0] for r in received) == sorted(addresses)
    times = sorted(r["at"] for r in received)
    # 19 intervals of 0.1 s at least (slots are spaced exactly; arrival adds jitter only
    # after them), and both workers sent.
    assert times[-1] - times[0] >= (count - 1) / mps * 0.9
    assert all(handled), handled


def loads_address(recipient_json: str) -> str:
    import orjson

    return str(orjson.loads(recipient_json)["address"])
