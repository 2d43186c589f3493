"""An ESME in its own process, for crash tests: sends one message, then holds its receipt.

`python esme_process.py HOST PORT` prints `sent <smsc id>` once the SMSC took the message and
`held <smsc id>` once the receipt reached the sink, which never finishes: the deliver_sm stays
unacknowledged until the process is killed.
"""

import asyncio
import sys

from opencomms.channels import OutboundMessage, Receipt
from opencomms.channels.smpp import SmppChannel


async def main(host: str, port: int) -> None:
    forever = asyncio.Event()

    async def hold(receipt: Receipt) -> None:
        print("held", receipt.external_id, flush=True)
        await forever.wait()

    channel = SmppChannel(host=host, port=port, system_id="opencomms", password="secret")
    await channel.open(hold)
    result = await channel.send(
        OutboundMessage(
            "comms_message_crash", 1, "SMS", "+15005550006", "+14155550100", {"text": "x"}
        )
    )
    print("sent", result.external_id, flush=True)
    await forever.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
