"""SMPP throughput: the test SMSC's own ceiling, then the SmppChannel through that SMSC.

    .venv/bin/python bench/smpp.py [--messages 20000] [--window 64] [--binds 1]
    .venv/bin/python bench/smpp.py --end-to-end [--database sqlite|postgresql|both]

Both phases send single-part messages into tests/channels/smsc/server.js (the npm `smpp`
package's server; `scripts/setup-smsc` installs it) and count a message as done when its
submit_sm_resp and its delivery receipt have both arrived:

1. ceiling: a bare client (one transceiver, PDUs built before the clock starts, a window of
   outstanding submit_sm, every deliver_sm answered at once) measures how fast the SMSC goes;
2. channel: `SmppChannel.send()` directly (encoding, windowing, receipt parsing), with as many
   concurrent senders as the window has room.

Prints messages/s for each, the ratio, and the CPU time per message of the SMSC process and of
this one (on a quiet machine, whichever nears a core's worth is the bottleneck). The SMSC is
warmed up first (node's JIT) with WARMUP messages.

With --end-to-end, a third phase runs bench/drain.py's end-to-end drain (real `opencomms serve`
and, on PostgreSQL, `--workers` `opencomms worker` processes, sends posted over HTTP, done when
every message is DELIVERED) with a config file whose only SMS sender (+15005550006) is on an
`smpp` route (window `--window`) to the same SMSC: receipts come back by deliver_sm.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.channels.smsc.control import Smsc, running

import drain
from opencomms.channels import OutboundMessage, Receipt
from opencomms.channels.smpp import SmppChannel, pdu
from opencomms.channels.smpp.gsm import encode_gsm

TIMEOUT_S = 300.0
WARMUP = 3_000
SENDER = "15005550006"


class BareClient(asyncio.Protocol):
    """The least an ESME can do: keep `window` submit_sm outstanding, answer every receipt."""

    def __init__(self, pdus: list[bytes], window: int) -> None:
        self.pdus = pdus
        self.window = window
        self.next = 0
        self.responses = 0
        self.receipts = 0
        self.buffer = bytearray()
        self.out: list[bytes] = []
        self.bound = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        body = pdu.bind_body("bench", "secret")
        transport.write(pdu.pack(pdu.BIND_TRANSCEIVER, 0, 0x7FFFFFF0, body))

    def start(self) -> None:
        self._send(min(self.window, len(self.pdus)))

    def _send(self, count: int, answers: list[bytes] | None = None) -> None:
        chunk = self.pdus[self.next : self.next + count]
        self.next += len(chunk)
        if not self.out:
            # One write per event-loop turn, answers and new submits together, as the channel
            # does: the SMSC then reads many PDUs per wake-up.
            asyncio.get_running_loop().call_soon(self._flush)
        self.out.extend(answers or ())
        self.out.extend(chunk)

    def _flush(self) -> None:
        out, self.out = self.out, []
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        frames, used = pdu.split_frames(self.buffer)
        del self.buffer[:used]
        answers = []
        freed = 0
        for command_id, status, sequence, _ in frames:
            if command_id == pdu.SUBMIT_SM_RESP:
                assert status == 0, hex(status)
                self.responses += 1
                freed += 1
            elif command_id == pdu.DELIVER_SM:
                self.receipts += 1
                answers.append(pdu.pack(pdu.DELIVER_SM_RESP, 0, sequence))
            elif command_id == pdu.BIND_TRANSCEIVER | pdu.RESPONSE:
                self.bound.set_result(status)
        if freed or answers:
            self._send(freed, answers)
        total = len(self.pdus)
        if self.responses == total and self.receipts == total and not self.done.done():
            self.done.set_result(None)


def submit_pdus(count: int, registered: bool = True) -> list[bytes]:
    template = pdu.SubmitTemplate(registered_delivery=1 if registered else 0)
    return [
        pdu.pack(
            pdu.SUBMIT_SM,
            0,
            index + 1,
            template.body(
                SENDER.encode(), 1, 1, b"1415%07d" % index, 0, encode_gsm(f"Bench {index}")
            ),
        )
        for index in range(count)
    ]


async def ceiling(smsc: Smsc, messages: int, window: int) -> float:
    pdus = submit_pdus(messages)
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(
        lambda: BareClient(pdus, window), smsc.host, smsc.port
    )
    try:
        assert await client.bound == 0
        started = time.perf_counter()
        client.start()
        await asyncio.wait_for(client.done, TIMEOUT_S)
        return time.perf_counter() - started
    finally:
        transport.close()


async def channel_run(smsc: Smsc, messages: int, window: int, binds: int) -> float:
    received = 0
    all_in = asyncio.get_running_loop().create_future()

    def sink(receipt: Receipt) -> None:
        nonlocal received
        received += 1
        if received == messages and not all_in.done():
            all_in.set_result(None)

    channel = SmppChannel(
        host=smsc.host,
        port=smsc.port,
        system_id="bench",
        password="secret",
        window=window,
        binds=binds,
    )
    await channel.open(sink)
    todo = iter(range(messages))

    async def sender() -> None:
        for index in todo:
            await channel.send(
                OutboundMessage(
                    f"m{index}",
                    1,
                    "SMS",
                    "+" + SENDER,
                    f"+1415{index:07d}",
                    {"text": f"Bench {index}"},
                )
            )

    try:
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(sender() for _ in range(window * binds)), all_in), TIMEOUT_S
        )
        return time.perf_counter() - started
    finally:
        await channel.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--binds", type=int, default=1)
    parser.add_argument("--end-to-end", action="store_true", help="also through dispatch")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (PostgreSQL)")
    args = parser.parse_args()
    n = args.messages
    async with running(keepSubmits=0) as smsc:
        await ceiling(smsc, WARMUP, args.window)
        await smsc.reset()
        meter = Meter(smsc.pid)
        bare = await ceiling(smsc, n, args.window)
        bare_cpu = meter.lap()
        stats = await smsc.stats()
        assert stats["unique"] == n and stats["deliverAcked"] == n, stats
        await smsc.reset()
        meter.lap()
        ours = await channel_run(smsc, n, args.window, args.binds)
        ours_cpu = meter.lap()
        stats = await smsc.stats()
        assert stats["unique"] == n and stats["duplicates"] == 0, stats
        print(f"{n} single-part messages, window {args.window}, receipts included")
        report("SMSC ceiling (bare client)", n, bare, bare_cpu)
        report(f"SmppChannel.send ({args.binds} bind)", n, ours, ours_cpu)
        print(f"ratio channel / ceiling: {n / ours / (n / bare):.2f}")
        if args.end_to_end:
            kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
            for kind in kinds:
                await smsc.reset()
                meter.lap()
                result = await end_to_end(smsc, kind, n, args.window, args.workers)
                smsc_cpu = meter.lap()[0]
                stats = await smsc.stats()
                drain.print_result(result)
                print(
                    f"  SMSC: {stats['unique']} unique submits, {stats['duplicates']} duplicates, "
                    f"{stats['deliverAcked']} receipts answered, CPU {smsc_cpu:.1f} s; "
                    f"end to end / ceiling: {result.per_second / (n / bare):.2f}"
                )
                print_cpu(n, result.cpu.seconds, smsc_cpu, bare_cpu[0])


@dataclass(frozen=True)
class SmppDrain(drain.Options):
    """drain.py's options, with the config file that puts the SMS sender on the SMPP route."""

    config_file: str = ""

    def worker_env(self) -> dict[str, str]:
        return {**super().worker_env(), "OPENCOMMS_CONFIG": self.config_file}


def config_text(smsc: Smsc, window: int) -> str:
    return f"""
[[routes]]
name = "smsc"
type = "smpp"
host = "{smsc.host}"
port = {smsc.port}
system_id = "opencomms"
password = "secret"
window = {window}

[[senders]]
channel = "SMS"
address = "+{SENDER}"
route = "smsc"
"""


async def end_to_end(smsc: Smsc, kind: str, messages: int, window: int, workers: int) -> Any:
    size = min(messages, drain.MAX_RECIPIENTS)
    if messages % size:
        raise SystemExit(f"--messages must be a multiple of {size} for --end-to-end")
    with tempfile.TemporaryDirectory(prefix="opencomms-smpp-") as temp:
        config = Path(temp) / "opencomms.toml"
        config.write_text(config_text(smsc, window))
        options = SmppDrain(messages // size, size, workers, 600.0, None, config_file=str(config))
        return await drain.bench_database(kind, options)


class Meter:
    """CPU seconds of the SMSC process and of this one, between laps."""

    def __init__(self, smsc_pid: int) -> None:
        self.smsc = psutil.Process(smsc_pid)
        self.last = self._now()

    def _now(self) -> tuple[float, float]:
        times = self.smsc.cpu_times()
        return float(times.user + times.system), time.process_time()

    def lap(self) -> tuple[float, float]:
        now = self._now()
        spent = (now[0] - self.last[0], now[1] - self.last[1])
        self.last = now
        return spent


def print_cpu(n: int, by_process: dict[str, float], smsc_s: float, bare_smsc_s: float) -> None:
    """CPU per message of every process: comparable whatever else the machine runs, unlike
    the wall-clock rate. The CPU-bound figure is what 2 cores allow if nothing waited: the
    fleet's CPU spread over both, and no process faster than a core's worth."""
    spent = {k: v for k, v in by_process.items() if k != "client"} | {"SMSC": smsc_s}
    per = {name: seconds / n * 1e6 for name, seconds in spent.items()}
    shown = ", ".join(f"{name} {us:.0f} us" for name, us in per.items())
    ours = sum(us for name, us in per.items() if name != "SMSC")
    bound = min(2e6 / sum(per.values()), 1e6 / max(per.values()))
    print(f"  CPU per message: {shown}; OpenComms in all {ours:.0f} us")
    print(
        f"  CPU-bound on 2 cores: {bound:,.0f} msg/s; the SMSC alone (bare client) "
        f"{bare_smsc_s / n * 1e6:.0f} us per message, {n / bare_smsc_s:,.0f} msg/s on its core"
    )


def report(label: str, messages: int, seconds: float, cpu: tuple[float, float]) -> None:
    smsc_us, own_us = (value / messages * 1e6 for value in cpu)
    print(
        f"{label:32} {messages / seconds:7.0f} msg/s  {seconds:6.2f} s  "
        f"CPU per message: SMSC {smsc_us:4.0f} us, client {own_us:4.0f} us"
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
