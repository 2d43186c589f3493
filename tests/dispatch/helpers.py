"""Writing sends the way the API does, reading rows back, and a clock tests move by hand."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms import ids
from opencomms.api import wire
from opencomms.channels import (
    Channel,
    Handoff,
    InboundSink,
    OutboundMessage,
    Receipt,
    ReceiptSink,
    SandboxChannel,
    SendResult,
)
from opencomms.clock import now_ms
from opencomms.dispatch import Dispatcher, WorkerConfig
from opencomms.domain.send import prepare
from opencomms.domain.senders import SENDER_POOL_PREFIX, derived_id
from opencomms.store import accounts, inventory, sends
from opencomms.store.accounts import SecretBox
from opencomms.store.codec import loads
from opencomms.store.db import Database
from opencomms.store.operation_status import Facts, aggregate, aggregate_stats
from opencomms.store.reads import operation_stats
from opencomms.store.senders import for_account
from opencomms.store.tables import (
    attempts,
    messages,
    operations,
    sender_pool_senders,
    sender_pools,
)

ACCOUNT = "AC" + "0" * 32


@dataclass
class FakeClock:
    now: int = field(default_factory=now_ms)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def body(*addresses: str, text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {
        "to": [{"address": a, "channel": "PHONE"} for a in addresses],
        "content": {"text": text},
        **extra,
    }


async def ensure_account(conn: AsyncConnection, sid: str = ACCOUNT) -> None:
    """The test account, with the default sandbox senders, as `serve` would make it."""
    if not await accounts.account_exists(conn, sid):
        await accounts.create_account(conn, SecretBox("test"), sid=sid)
        await inventory.give_defaults(conn, sid, now_ms())


async def make_pool(
    db: Database, channels: tuple[str, ...] = ("SMS", "RCS", "WHATSAPP"), account: str = ACCOUNT
) -> str:
    """A sender pool of the account's default senders of these channels; returns its id."""
    pool_id = derived_id(SENDER_POOL_PREFIX, account, *channels, str(now_ms()))
    async with db.write() as conn:
        await ensure_account(conn, account)
        members = [s for s in await for_account(conn, account) if s.channel in channels]
        now = now_ms()
        await conn.execute(
            sender_pools.insert().values(
                id=pool_id,
                account_sid=account,
                name="test",
                tags="{}",
                created_at=now,
                updated_at=now,
            )
        )
        for member in members:
            await conn.execute(
                sender_pool_senders.insert().values(
                    pool_id=pool_id, sender_id=member.id, account_sid=account, created_at=now
                )
            )
    return pool_id


async def send(db: Database, request: dict[str, Any], *, now: int | None = None) -> str:
    """Stores a send exactly as POST /v1/Messages does; returns the operation id."""
    wire.normalize_enums(request)
    command = wire.send_command(request)
    async with db.write() as conn:
        await ensure_account(conn)
        available = await sends.account_senders(conn, ACCOUNT, command.sender)
    prepared = prepare(command, available, datetime.now(UTC))
    operation_id = ids.operation_id()
    await sends.write_send(
        db,
        account_sid=ACCOUNT,
        operation_id=operation_id,
        prepared=prepared,
        content=request["content"],
        sender=request.get("from"),
        now=now if now is not None else now_ms(),
    )
    return operation_id


def dispatcher(
    db: Database,
    clock: Callable[[], int],
    *,
    sandbox: SandboxChannel | None = None,
    rand: float = 1.0,
    **config: Any,
) -> Dispatcher:
    channel = sandbox or SandboxChannel(clock=clock)
    settings = WorkerConfig(**{"worker_id": "w-test", **config})
    return Dispatcher(
        db,
        {"sandbox": channel},
        settings,
        clock=clock,
        rand=lambda: rand,
    )


async def drain(worker: Dispatcher, limit: int = 100) -> int:
    """Runs batches until one finds nothing to do; returns how many items were handled."""
    total = 0
    for _ in range(limit):
        done = await worker.run_once()
        # Templates that need the engine render beside the batch: wait for them, as the
        # tests move a clock of their own that no lease heartbeat keeps up with.
        await worker.settle_renders()
        if not done:
            return total
        total += done
    raise AssertionError("dispatcher never went idle")


async def message_rows(db: Database, operation_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        query = (
            select(messages)
            .where(messages.c.operation_id == operation_id)
            .order_by(messages.c.position)
        )
        return [dict(r._mapping) for r in await conn.execute(query)]


async def attempt_rows(db: Database, message_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        query = select(attempts).where(attempts.c.message_id == message_id)
        rows = [dict(r._mapping) for r in await conn.execute(query.order_by(attempts.c.number))]
    for row in rows:
        row["sender"], row["recipient"] = loads(row["sender"]), loads(row["recipient"])
    return rows


async def operation_row(db: Database, operation_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        query = select(operations).where(operations.c.id == operation_id)
        return dict((await conn.execute(query)).one()._mapping)


async def assert_operation_consistent(db: Database, operation_id: str) -> str:
    """operations.status and stats equal what the message rows say; returns the status."""
    rows = await message_rows(db, operation_id)
    statuses = [r["status"] for r in rows]
    expected = aggregate(
        Facts(
            active=any(s in ("QUEUED", "SENT") for s in statuses),
            scheduled="SCHEDULED" in statuses,
            progressed=any(
                s in ("DELIVERED", "READ", "UNDELIVERED")
                or (s == "FAILED" and not r["unaddressable"])
                for s, r in zip(statuses, rows, strict=True)
            ),
            canceled="CANCELED" in statuses,
        )
    )
    operation = await operation_row(db, operation_id)
    assert operation["status"] == expected
    async with db.read() as conn:
        stats = (await operation_stats(conn, [operation_id]))[operation_id]
        # The counters (what the API serves) equal the aggregate of every message and attempt.
        assert stats == (await aggregate_stats(conn, [operation_id]))[operation_id]
    assert stats.total == len(rows)
    for status in set(statuses):
        counted = sum(1 for r in rows if r["status"] == status and not r["unaddressable"])
        assert stats.count(status) == counted
    return str(operation["status"])


class GatedChannel:
    """A sandbox whose hand-offs, once done, wait at a gate before answering: the moment a
    worker can stall (GC pause, slow network) with a message handed off but not recorded."""

    name = "gated"

    def __init__(self, inner: SandboxChannel) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        await self.inner.open(receipts, inbound)

    async def send(self, message: OutboundMessage) -> SendResult:
        result = await self.inner.send(message)
        self.waiting.set()
        await self.gate.wait()
        return result

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        return await self.inner.query(handoffs)

    async def aclose(self) -> None:
        await self.inner.aclose()


def dispatcher_on(
    db: Database, clock: Callable[[], int], channel: Channel, **config: Any
) -> Dispatcher:
    settings = WorkerConfig(**{"worker_id": "w-test", **config})
    return Dispatcher(
        db,
        {"sandbox": channel},
        settings,
        clock=clock,
        rand=lambda: 1.0,
    )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Waits (bounded) for a condition another task or process brings about."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 - the change happens in the database
            await asyncio.sleep(0.02)
