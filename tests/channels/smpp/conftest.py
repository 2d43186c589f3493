"""A fresh test SMSC per test, and channels bound to it."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from opencomms.channels import OutboundMessage, Receipt
from opencomms.channels.base import InboundMessage
from opencomms.channels.smpp import SmppChannel
from tests.channels.smsc.control import Smsc, running

SENDER = "+15005550006"


@pytest.fixture(scope="session")
async def smsc_process() -> AsyncIterator[Smsc]:
    async with running() as server:
        yield server


@pytest.fixture
async def smsc(smsc_process: Smsc) -> AsyncIterator[Smsc]:
    """The session's SMSC, its script and counters reset for this test."""
    await smsc_process.reset()
    yield smsc_process


class Sinks:
    """What a channel pushed: receipts and inbound messages, with an optional hold."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.inbound: list[InboundMessage] = []
        self.hold: asyncio.Event | None = None  # while set to an unset event, sinks wait
        self.changed = asyncio.Event()

    async def receipt(self, receipt: Receipt) -> None:
        if self.hold is not None:
            await self.hold.wait()
        self.receipts.append(receipt)
        self.changed.set()

    async def message(self, message: InboundMessage) -> None:
        if self.hold is not None:
            await self.hold.wait()
        self.inbound.append(message)
        self.changed.set()

    async def until(self, test: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not test():
                self.changed.clear()
                await self.changed.wait()


OpenChannel = Callable[..., Awaitable[tuple[SmppChannel, Sinks]]]


@pytest.fixture
async def open_channel(smsc: Smsc) -> AsyncIterator[OpenChannel]:
    opened: list[SmppChannel] = []

    async def open_one(**options: Any) -> tuple[SmppChannel, Sinks]:
        settings: dict[str, Any] = {
            "host": smsc.host,
            "port": smsc.port,
            "system_id": "opencomms",
            "password": "secret",
            "reconnect_min": 0.05,
            "reconnect_max": 0.2,
            "connect_timeout": 3,
            "response_timeout": 3,
            "throttle_pause": 0.05,
        }
        settings.update(options)
        channel = SmppChannel(name="test-smsc", **settings)
        sinks = Sinks()
        await channel.open(sinks.receipt, sinks.message)
        opened.append(channel)
        return channel, sinks

    yield open_one
    for channel in opened:
        await channel.aclose()


def message(to: str, text: str, attempt: int = 1, sender: str = SENDER) -> OutboundMessage:
    return OutboundMessage(
        f"comms_message_{to}_{text[:8]}", attempt, "SMS", sender, to, {"text": text}
    )
