"""An ESME in its own process (on uvloop, like the worker), for crash tests.

`python esme_process.py hold HOST PORT` sends one message, prints `sent <smsc id>`, then
`held <smsc id>` once the receipt reached its sink, which never finishes: the deliver_sm stays
unanswered until the process is killed.

`python esme_process.py send HOST PORT WINDOW N,N,...` sends those messages (text `crash <n>`)
concurrently and prints `sent <n> <smsc id>` as each is taken, as a dispatcher
records each hand-off's result: killed mid-send, the unprinted ones are what must be re-sent.
"""

import asyncio
import sys
from collections.abc import Coroutine

from opencomms.channels import OutboundMessage, Receipt
from opencomms.channels.smpp import SmppChannel

SENDER = "+15005550006"


def outbound(index: int) -> OutboundMessage:
    return OutboundMessage(
        f"comms_message_{index}", 1, "SMS", SENDER, f"+1415{index:07d}", {"text": f"crash {index}"}
    )


async def hold(host: str, port: int) -> None:
    forever = asyncio.Event()

    async def sink(receipt: Receipt) -> None:
        print("held", receipt.external_id, flush=True)
        await forever.wait()

    channel = SmppChannel(host=host, port=port, system_id="opencomms", password="secret")
    await channel.open(sink)
    result = await channel.send(outbound(0))
    print("sent", result.external_id, flush=True)
    await forever.wait()


async def send(host: str, port: int, window: int, indices: list[int]) -> None:
    channel = SmppChannel(
        host=host, port=port, system_id="opencomms", password="secret", window=window
    )
    await channel.open(lambda receipt: None)

    async def one(index: int) -> None:
        result = await channel.send(outbound(index))
        print("sent", index, result.external_id, flush=True)

    await asyncio.gather(*(one(index) for index in indices))
    print("done", flush=True)
    await channel.aclose()


def run(main: Coroutine[None, None, None]) -> None:
    """On uvloop, as `serve` and `worker` run (so the crash tests cover it)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    mode, host, port, *rest = sys.argv[1:]
    if mode == "hold":
        run(hold(host, int(port)))
    else:
        window, indices = rest
        run(send(host, int(port), int(window), [int(i) for i in indices.split(",")]))
