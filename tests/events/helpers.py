"""Sinks, subscriptions and deliverers for the events tests."""

import asyncio
from collections.abc import Callable
from typing import Any

from opencomms.clock import now_ms
from opencomms.domain.transitions import MessageTransition
from opencomms.events import outbox, sinks, types
from opencomms.events.delivery import Deliverer, DeliveryConfig
from opencomms.events.ssrf import Resolver
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database
from tests.conftest import SECRET

LOCAL = ("127.0.0.0/8",)


def config(**overrides: Any) -> DeliveryConfig:
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "allowed_networks": LOCAL,
        "poll_interval": 0.05,
        "attempt_timeout_seconds": 5.0,  # generous: the test machine may be loaded
        "backoff_base_seconds": 1.0,
        "backoff_max_seconds": 60.0,
        **overrides,
    }
    return DeliveryConfig(**values)


def deliverer(
    db: Database,
    *,
    clock: Callable[[], int] = now_ms,
    resolver: Resolver | None = None,
    **overrides: Any,
) -> Deliverer:
    return Deliverer(db, config(**overrides), clock=clock, resolver=resolver)


async def active_sink(
    db: Database,
    box: SecretBox,
    account_sid: str,
    destination: str,
    *,
    batch: bool = False,
    subscribe: list[str] | None = None,
    now: int | None = None,
) -> tuple[sinks.Sink, str]:
    """An active webhook sink subscribed to `subscribe` (every type by default)."""
    now = now or now_ms()
    async with db.write() as conn:
        sink, secret = await sinks.create_sink(
            conn,
            box,
            account_sid=account_sid,
            description="test sink",
            sink_type="webhook",
            configuration={"destination": destination, "method": "POST", "batch_events": batch},
            now=now,
            status=sinks.ACTIVE,
        )
        chosen = subscribe if subscribe is not None else list(types.ALL_TYPES)
        await sinks.create_subscription(
            conn,
            account_sid=account_sid,
            sink_sid=sink.sid,
            description="all",
            subscribed=[(t, 1) for t in chosen],
            now=now,
        )
    return sink, secret


def lifecycle(
    account_sid: str, message_id: str, operation_id: str = "op1"
) -> list[MessageTransition]:
    """A message's events: queued, sent, delivered."""
    common: dict[str, Any] = {
        "message_id": message_id,
        "operation_id": operation_id,
        "account_sid": account_sid,
        "channel": "SMS",
        "sender": {"id": "sender_1", "address": "+15005550006", "channel": "SMS"},
        "recipient": {"address": "+14155550100", "channel": "PHONE"},
        "tags": {"campaign": "x"},
    }
    return [
        MessageTransition(from_status=None, to_status="QUEUED", **common),
        MessageTransition(
            from_status="QUEUED", to_status="SENT", attempt=1, downstream_id="SM1", **common
        ),
        MessageTransition(
            from_status="SENT", to_status="DELIVERED", attempt=1, downstream_id="SM1", **common
        ),
    ]


async def emit(db: Database, transitions: list[Any], now: int | None = None) -> int:
    async with db.write() as conn:
        return await outbox.emit(conn, transitions, now or now_ms())


async def settle(d: Deliverer, rounds: int = 50) -> None:
    """Runs the deliverer until no sink has due work (bounded)."""
    for _ in range(rounds):
        started = await d.run_once()
        await d.drain()
        if not started:
            return
        await asyncio.sleep(0)
