"""The SMPP channel against a real SMSC process (tests/channels/smsc, the npm smpp server)."""

import asyncio
import datetime
import ipaddress
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from opencomms.channels import (
    Channel,
    PermanentDeliveryError,
    RouteConfig,
    TransientDeliveryError,
    create,
)
from opencomms.channels.smpp import RouteDownError, SmppChannel, SmppRouteConfig
from opencomms.domain import errors
from tests.channels.smpp.conftest import OpenChannel, message
from tests.channels.smsc.control import Smsc, running

TO = "+14155550100"
ESME_PROCESS = Path(__file__).with_name("esme_process.py")


async def test_a_refused_bind_puts_the_route_down_with_its_reason(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    channel, _ = await open_channel(password="wrong")
    state = channel.state()
    assert not state.up
    assert "ESME_RINVPASWD" in state.reason
    with pytest.raises(RouteDownError, match="ESME_RINVPASWD"):
        await channel.send(message(TO, "hello"))
    stats = await smsc.stats()
    assert stats["bindRefused"] >= 1
    assert stats["submits"] == 0


async def test_a_send_returns_the_smsc_id_and_its_receipt_follows(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    channel, sinks = await open_channel()
    assert channel.state().up
    result = await channel.send(message(TO, "Hello {world} €5"))
    assert result.parts == ()
    await sinks.until(lambda: len(sinks.receipts) == 1)
    assert sinks.receipts[0].external_id == result.external_id
    assert sinks.receipts[0].status == "DELIVERED"
    [submit] = await smsc.submits()
    assert (submit["destination"], submit["source"]) == ("14155550100", "15005550006")
    assert (submit["destTon"], submit["sourceTon"], submit["dataCoding"]) == (1, 1, 0)
    assert submit["text"] == "Hello {world} €5"
    assert submit["id"] == result.external_id
    assert (await smsc.wait_for("deliverAcked", 1))["unacked"] == 0


async def test_registry_creates_the_smpp_kind(smsc: Smsc) -> None:
    options = SmppRouteConfig(host=smsc.host, port=smsc.port, system_id="x", binds=3)
    channel = create(RouteConfig("aggregator", "smpp", options))
    assert isinstance(channel, SmppChannel)
    assert isinstance(channel, Channel)
    assert (channel.name, channel.config.binds, channel.config.window) == ("aggregator", 3, 64)
    with pytest.raises(ValidationError):
        SmppRouteConfig(host="h", system_id="x", windw=3)  # a typo is refused, not ignored


async def test_throttling_slows_the_route_and_retries(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    await smsc.configure(throttleCount=3)
    channel, _ = await open_channel(throttle_pause=0.1)
    started = time.monotonic()
    result = await channel.send(message(TO, "patience"))
    assert time.monotonic() - started >= 0.25  # three pauses of 0.1 s
    stats = await smsc.stats()
    assert (stats["throttled"], stats["unique"], stats["duplicates"]) == (3, 1, 0)
    assert result.external_id


async def test_throttling_past_the_resubmits_is_a_transient_failure(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    await smsc.configure(throttleCount=100)
    channel, _ = await open_channel(resubmits=2, throttle_pause=0.01)
    with pytest.raises(TransientDeliveryError) as caught:
        await channel.send(message(TO, "never"))
    assert caught.value.code == 30017
    assert "ESME_RTHROTTLED" in caught.value.message
    assert (await smsc.stats())["throttled"] == 3


async def test_an_invalid_destination_is_a_permanent_failure(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    await smsc.configure(submitStatus={"14155550199": 0x0B})
    channel, _ = await open_channel()
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(message("+14155550199", "nope"))
    assert caught.value.code == errors.INVALID_TO_NUMBER
    assert "ESME_RINVDSTADR" in caught.value.message


async def test_the_window_bounds_what_is_outstanding_per_bind(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    await smsc.configure(respondDelayMs=15, receipts="none")
    channel, _ = await open_channel(window=4, binds=2)
    results = await asyncio.gather(*(channel.send(message(TO, f"m{i}")) for i in range(48)))
    stats = await smsc.stats()
    # Filled to the window (so it is used), never past it.
    assert stats["maxOutstanding"] == 4
    assert stats["binds"] == 2
    assert len({r.external_id for r in results}) == 48


async def test_a_connection_dropped_mid_window_resends_only_what_was_in_flight(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    window = 8
    await smsc.configure(respondDelayMs=10, dropAfter=30, receipts="none")
    channel, _ = await open_channel(window=window)
    results = await asyncio.gather(*(channel.send(message(TO, f"drop {i}")) for i in range(80)))
    stats = await smsc.stats()
    assert stats["drops"] == 1
    assert stats["binds"] == 2  # it bound again
    assert stats["unique"] == 80
    # What was in the window when the connection went may go twice, nothing else.
    assert stats["duplicates"] <= window
    assert stats["submits"] <= 80 + window
    assert len({r.external_id for r in results}) == 80
    assert channel.state().up


@pytest.mark.parametrize(
    ("text", "coding", "parts"),
    [
        ("GSM text with €uro and [brackets] " * 12, 0, 3),  # 456 septets
        ("Привет, это длинное сообщение. " * 5, 8, 3),  # 155 UCS-2 units
    ],
)
@pytest.mark.parametrize("concatenation", ["udh", "sar"])
async def test_a_long_text_goes_in_concatenated_parts(
    smsc: Smsc, open_channel: OpenChannel, text: str, coding: int, parts: int, concatenation: str
) -> None:
    channel, sinks = await open_channel(concatenation=concatenation)
    result = await channel.send(message(TO, text))
    assert len((result.external_id, *result.parts)) == parts
    submits = await smsc.submits()
    assert [s["part"] for s in submits] == [f"{i}/{parts}" for i in range(1, parts + 1)]
    assert {s["dataCoding"] for s in submits} == {coding}
    assert {s["esmClass"] & 0x40 for s in submits} == {0x40 if concatenation == "udh" else 0}
    assert "".join(s["text"] for s in submits) == text
    assert [s["id"] for s in submits] == list((result.external_id, *result.parts))
    await sinks.until(lambda: len(sinks.receipts) == parts)
    assert {r.external_id for r in sinks.receipts} == set((result.external_id, *result.parts))


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("form", ["text", "tlv"])
async def test_receipts_before_and_after_their_responses(
    smsc: Smsc, open_channel: OpenChannel, when: str, form: str
) -> None:
    await smsc.configure(
        receipts=when, receiptFormat=form, receiptStat={"14155550111": ["UNDELIV", 1]}
    )
    channel, sinks = await open_channel(window=4)
    sends = [channel.send(message(TO, f"r{i}")) for i in range(10)]
    results = await asyncio.gather(*sends, channel.send(message("+14155550111", "gone")))
    await sinks.until(lambda: len(sinks.receipts) == 11)
    by_id = {r.external_id: r for r in sinks.receipts}
    assert set(by_id) == {r.external_id for r in results}
    failed = by_id[results[-1].external_id]
    assert (failed.status, failed.error_code) == ("UNDELIVERED", errors.UNKNOWN_DESTINATION)
    assert {by_id[r.external_id].status for r in results[:-1]} == {"DELIVERED"}


async def test_a_receipt_is_acknowledged_only_once_its_sink_is_done(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    channel, sinks = await open_channel()
    sinks.hold = asyncio.Event()
    await channel.send(message(TO, "held"))
    stats = await smsc.wait_for("deliverSent", 1)
    await asyncio.sleep(0.1)
    assert (await smsc.stats())["unacked"] == 1
    sinks.hold.set()
    await sinks.until(lambda: len(sinks.receipts) == 1)
    stats = await smsc.wait_for("deliverAcked", 1)
    assert stats["unacked"] == 0


async def test_a_failing_sink_gets_the_receipt_delivered_again(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    channel, sinks = await open_channel()
    failures = []

    async def flaky(receipt: object) -> None:
        if not failures:
            failures.append(receipt)
            raise OSError("disk full")
        await sinks.receipt(receipt)  # type: ignore[arg-type]

    channel._receipts = flaky  # the sink given to open(), swapped for this test
    result = await channel.send(message(TO, "twice"))
    await sinks.until(lambda: len(sinks.receipts) == 1)
    assert sinks.receipts[0].external_id == result.external_id
    stats = await smsc.stats()
    assert (stats["deliverNacked"], stats["deliverAcked"]) == (1, 1)


async def test_a_sink_answering_futures_acknowledges_when_they_complete(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    # Dispatch's receipt sink returns a future per receipt (completed once it is committed).
    channel, _ = await open_channel()
    given: list[asyncio.Future[None]] = []

    def sink(receipt: object) -> asyncio.Future[None]:
        given.append(asyncio.get_running_loop().create_future())
        return given[-1]

    channel._receipts = sink  # the sink given to open(), swapped for this test
    await channel.send(message(TO, "future"))
    await smsc.wait_for("deliverSent", 1)
    await asyncio.sleep(0.1)
    assert (await smsc.stats())["unacked"] == 1  # not committed: not answered
    given[0].set_exception(OSError("disk full"))
    stats = await smsc.wait_for("deliverNacked", 1)  # refused: the SMSC sends it again
    await asyncio.sleep(0.3)
    assert len(given) == 2
    given[1].set_result(None)
    stats = await smsc.wait_for("deliverAcked", 1)
    assert (stats["deliverNacked"], stats["deliverAcked"], stats["unacked"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("text", "encoding", "concat", "parts"),
    [
        ("Hi there {ok} €", "gsm", "udh", 1),
        ("Доброе утро", "ucs2", "udh", 1),
        ("A long reply, in several parts. " * 10, "gsm", "udh", 3),
        ("Длинный ответ из нескольких частей. " * 4, "ucs2", "udh", 3),
        ("A long reply, in several parts. " * 10, "gsm", "sar", 3),
    ],
)
async def test_inbound_messages_single_and_multipart(
    smsc: Smsc, open_channel: OpenChannel, text: str, encoding: str, concat: str, parts: int
) -> None:
    _, sinks = await open_channel()
    sent = await smsc.inbound(
        **{"from": "+447700900123", "to": "+15005550006"},
        text=text,
        encoding=encoding,
        concat=concat,
        reverse=True,
    )
    assert sent == parts
    await sinks.until(lambda: len(sinks.inbound) == 1)
    [inbound] = sinks.inbound
    # One message whole, however many parts it came in (each part acknowledged).
    assert (inbound.sender, inbound.to, inbound.content["text"]) == (
        "+447700900123",
        "+15005550006",
        text,
    )
    stats = await smsc.wait_for("deliverAcked", parts)
    assert stats["unacked"] == 0


async def test_transmitter_and_receiver_binds(smsc: Smsc, open_channel: OpenChannel) -> None:
    channel, sinks = await open_channel(bind="transmitter+receiver", binds=2)
    state = channel.state()
    assert (state.up, state.bound, state.connections) == (True, 4, 4)
    result = await channel.send(message(TO, "split roles"))
    await sinks.until(lambda: len(sinks.receipts) == 1)
    assert sinks.receipts[0].external_id == result.external_id
    assert (await smsc.stats())["binds"] == 4


async def test_the_route_comes_back_after_the_smsc_drops_it(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    channel, _ = await open_channel()
    assert await smsc.drop() == 1
    await smsc.wait_for("binds", 2)
    async with asyncio.timeout(5):
        while not channel.state().up:  # noqa: ASYNC110 - the state has no event to wait on
            await asyncio.sleep(0.02)
    assert (await channel.send(message(TO, "back"))).external_id


async def test_enquire_link_keeps_an_idle_bind_alive_and_close_unbinds(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    channel, _ = await open_channel(enquire_link_interval=0.2)
    stats = await smsc.wait_for("enquireLinks", 2, within=3)
    assert stats["enquireLinks"] >= 2
    await channel.aclose()
    assert (await smsc.wait_for("unbinds", 1))["unbinds"] == 1


async def test_mps_paces_the_route(smsc: Smsc, open_channel: OpenChannel) -> None:
    await smsc.configure(receipts="none")
    channel, _ = await open_channel(mps=40)
    started = time.monotonic()
    await asyncio.gather(*(channel.send(message(TO, f"p{i}")) for i in range(9)))
    assert time.monotonic() - started >= 8 / 40 * 0.9


async def test_an_unacknowledged_receipt_is_redelivered_after_the_esme_dies(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ESME_PROCESS),
        "hold",
        smsc.host,
        str(smsc.port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(15):
            lines = [(await process.stdout.readline()).decode().split() for _ in range(2)]
    finally:
        process.kill()  # SIGKILL: no unbind, no answer to the receipt it holds
        await process.wait()
    words = dict(lines)
    assert words["sent"] == words["held"]
    assert (await smsc.stats())["deliverAcked"] == 0
    _, sinks = await open_channel()
    await sinks.until(lambda: len(sinks.receipts) == 1)
    assert sinks.receipts[0].external_id == words["sent"]
    stats = await smsc.wait_for("deliverAcked", 1)
    assert (stats["redelivered"], stats["unacked"]) == (1, 0)


async def test_a_generic_nack_answering_a_submit_is_its_outcome(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    await smsc.configure(genericNack={"14155550177": 0x03})
    channel, _ = await open_channel()
    with pytest.raises(PermanentDeliveryError, match="ESME_RINVCMDID"):
        await channel.send(message("+14155550177", "malformed, says the SMSC"))
    assert (await channel.send(message(TO, "fine"))).external_id  # the bind is unharmed


async def test_a_request_the_esme_does_not_serve_gets_a_generic_nack(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    await open_channel()
    await smsc.data_sm()
    assert (await smsc.wait_for("genericNacksReceived", 1))["genericNacksReceived"] == 1


async def test_an_incomplete_inbound_message_is_refused_after_the_reassembly_timeout(
    smsc: Smsc, open_channel: OpenChannel
) -> None:
    await smsc.configure(nackRedelayMs=5000)
    _, sinks = await open_channel(reassembly_timeout=0.2)
    text = "A long reply, in several parts. " * 10
    sender = {"from": "+447700900123", "to": "+15005550006"}
    assert await smsc.inbound(**sender, text=text, only=[1, 3]) == 3
    stats = await smsc.wait_for("deliverNacked", 2, within=3)
    assert (stats["deliverNacked"], stats["deliverAcked"]) == (2, 0)
    assert sinks.inbound == []


async def test_inbound_without_a_sink_is_refused_not_dropped(smsc: Smsc) -> None:
    channel = SmppChannel(host=smsc.host, port=smsc.port, system_id="opencomms", password="secret")
    await channel.open(lambda receipt: None)
    try:
        await smsc.configure(nackRedelayMs=5000)
        await smsc.inbound(**{"from": "+447700900123", "to": "+15005550006"}, text="hello")
        stats = await smsc.wait_for("deliverNacked", 1)
        assert (stats["deliverNacked"], stats["deliverAcked"]) == (1, 0)
    finally:
        await channel.aclose()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test smsc")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smsc.crt", directory / "smsc.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_smpp_over_tls_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    async with running("--tls-key", str(key), "--tls-cert", str(cert)) as smsc:
        common = {"host": smsc.host, "port": smsc.port, "system_id": "tls", "password": "secret"}
        trusted = SmppChannel(**common, tls=True, tls_ca_file=str(cert))
        untrusted = SmppChannel(**common, tls=True, reconnect_min=5)
        try:
            await trusted.open(lambda receipt: None)
            assert trusted.state().up
            assert (await trusted.send(message(TO, "secret"))).external_id
            await untrusted.open(lambda receipt: None)
            state = untrusted.state()
            assert not state.up
            assert "CERTIFICATE_VERIFY_FAILED" in state.reason
        finally:
            await trusted.aclose()
            await untrusted.aclose()


async def test_sigkill_mid_send_resends_at_most_a_window(smsc: Smsc) -> None:
    window, total = 8, 300
    await smsc.configure(respondDelayMs=2, receipts="none")

    async def esme(indices: list[int], kill_after: int | None) -> dict[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ESME_PROCESS),
            "send",
            smsc.host,
            str(smsc.port),
            str(window),
            ",".join(map(str, indices)),
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        taken: dict[int, str] = {}
        try:
            async with asyncio.timeout(30):
                while line := (await process.stdout.readline()).decode().split():
                    if line[0] == "sent":
                        taken[int(line[1])] = line[2]
                    if line[0] == "done" or len(taken) == kill_after:
                        break
        finally:
            process.kill()  # SIGKILL, mid-send when kill_after is reached
            await process.wait()
        # What it wrote before it died counts as recorded, read or not.
        for line in (await process.stdout.read()).decode().splitlines():
            if line.startswith("sent"):
                taken[int(line.split()[1])] = line.split()[2]
        return taken

    recorded = await esme(list(range(total)), kill_after=100)
    assert 100 <= len(recorded) < total
    # As dispatch would: everything without a recorded SMSC id is handed off again.
    missing = [i for i in range(total) if i not in recorded]
    resent = await esme(missing, kill_after=None)
    assert set(resent) == set(missing)
    stats = await smsc.stats()
    assert stats["unique"] == total
    # Only what the SMSC took while the dead process had it in its window goes twice.
    assert stats["duplicates"] <= window
    assert stats["submits"] == total + stats["duplicates"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("password", "status", "says", "unbinds"),
    [("secret", 0, '"up": true', 1), ("bad", 3, "ESME_RINVPASWD", 0)],
)
async def test_the_probe_command_shows_the_route_state(
    smsc: Smsc, password: str, status: int, says: str, unbinds: int
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opencomms",
        "smpp",
        "probe",
        "--host",
        smsc.host,
        "--port",
        str(smsc.port),
        "--system-id",
        "ops",
        "--password",
        password,
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, _ = await process.communicate()
    assert process.returncode == status
    assert says in out.decode()
    assert (await smsc.stats())["unbinds"] == unbinds  # a bound probe unbinds before it exits
