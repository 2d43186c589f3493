"""A worker process whose channel kills the process (as a segfault or the OOM killer would)
when handed a message whose text is "POISON": python -m tests.dispatch.crashing_worker URL"""

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from opencomms.channels import (
    Channel,
    Handoff,
    InboundSink,
    OutboundMessage,
    Receipt,
    ReceiptSink,
    SendResult,
    registry,
)
from opencomms.config import load_settings
from opencomms.dispatch import Dispatcher
from opencomms.dispatch.worker import serve
from opencomms.store.db import open_database

CRASH_EXIT = 70


class CrashOnPoison:
    def __init__(self, inner: Channel) -> None:
        self.inner = inner
        self.name = inner.name

    async def open(self, receipts: ReceiptSink, inbound: InboundSink | None = None) -> None:
        await self.inner.open(receipts, inbound)

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.content.get("text") == "POISON":
            os._exit(CRASH_EXIT)
        return await self.inner.send(message)

    async def query(self, handoffs: Sequence[Handoff]) -> list[Receipt]:
        return await self.inner.query(handoffs)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def main(url: str) -> None:
    settings = load_settings(database_url=url)
    db = open_database(url)
    channels = {
        name: CrashOnPoison(channel)
        for name, channel in registry.build_routes(settings.routes).items()
    }
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        async with Dispatcher(db, channels, settings.worker) as dispatcher:
            await serve(dispatcher, [], stop)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
