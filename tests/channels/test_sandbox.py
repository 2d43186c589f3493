"""The sandbox channel: scripted outcomes by address, receipts pushed and queried."""

import asyncio

import pytest

from opencomms.channels import (
    Channel,
    Handoff,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    SandboxChannel,
    TransientDeliveryError,
    UnknownChannel,
    create,
)
from opencomms.channels.registry import RouteConfig, SandboxOptions, build_routes, sandbox_route
from opencomms.channels.sandbox import CARRIER_CONGESTION

CHANNELS = ["SMS", "RCS", "WHATSAPP"]


def message(to: str, channel: str = "SMS", attempt: int = 1) -> OutboundMessage:
    return OutboundMessage("comms_message_x", attempt, channel, "+15005550006", to, {"text": "Hi"})


async def opened(**options: float) -> tuple[SandboxChannel, list[Receipt]]:
    received: list[Receipt] = []
    channel = SandboxChannel(**options)
    await channel.open(received.append)
    return channel, received


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
async def test_refusals_are_permanent_on_every_channel(channel: str, to: str, code: int) -> None:
    sandbox, received = await opened()
    with pytest.raises(PermanentDeliveryError) as refused:
        await sandbox.send(message(to, channel))
    assert refused.value.code == code
    assert sandbox.inbox.deliveries == [] and received == []


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    ("to", "receipts"),
    [
        ("+14155550100", [("DELIVERED", None, True)]),
        ("+15005550010", [("UNDELIVERED", 30003, True)]),
        ("+15005550011", [("UNDELIVERED", 30005, True)]),
        ("+15005550020", [("DELIVERED", None, False), ("READ", None, True)]),
    ],
)
async def test_taken_messages_get_their_scripted_receipts(
    channel: str, to: str, receipts: list[tuple[str, int | None, bool]]
) -> None:
    sandbox, received = await opened()
    result = await sandbox.send(message(to, channel))
    [delivery] = sandbox.inbox.for_address(to)
    assert delivery.external_id == result.external_id and delivery.channel == channel
    # With no delay the receipts come before send() returns, as an SMSC's may.
    assert [(r.status, r.error_code, r.final) for r in received] == receipts
    assert {r.external_id for r in received} == {result.external_id}


async def test_rcs_not_enabled_refuses_rcs_only() -> None:
    sandbox, _ = await opened()
    with pytest.raises(PermanentDeliveryError) as refused:
        await sandbox.send(message("+15005550030", "RCS"))
    assert refused.value.code == 61337
    await sandbox.send(message("+15005550030", "SMS"))
    assert len(sandbox.inbox.for_address("+15005550030")) == 1


async def test_flaky_number_fails_twice_then_delivers() -> None:
    sandbox, received = await opened()
    for attempt in (1, 2):
        with pytest.raises(TransientDeliveryError) as failed:
            await sandbox.send(message("+15005550040", attempt=attempt))
        assert failed.value.code == CARRIER_CONGESTION
    await sandbox.send(message("+15005550040", attempt=3))
    assert [r.status for r in received] == ["DELIVERED"]


async def test_whatsapp_prefix_is_ignored_by_the_script() -> None:
    sandbox, _ = await opened()
    with pytest.raises(PermanentDeliveryError):
        await sandbox.send(message("whatsapp:+15005550001", "WHATSAPP"))


async def test_delayed_receipts_are_pushed_after_the_delay() -> None:
    received: list[Receipt] = []
    both = asyncio.Event()

    def sink(receipt: Receipt) -> None:
        received.append(receipt)
        if len(received) == 2:
            both.set()

    sandbox = SandboxChannel(delay=0.05)
    await sandbox.open(sink)
    await sandbox.send(message("+15005550020"))
    assert received == []
    await asyncio.wait_for(both.wait(), 5)
    assert [r.status for r in received] == ["DELIVERED", "READ"]


async def test_close_drops_pending_receipts_but_query_still_answers() -> None:
    now = [1_000_000]
    sandbox, received = await opened(delay=60.0, clock=lambda: now[0])
    result = await sandbox.send(message("+15005550020"))
    await sandbox.aclose()
    handoff = Handoff(result.external_id, "SMS", "+15005550020", 1, attempted_at=1_000_000)
    # Any process can answer from the destination and the hand-off time alone.
    other = SandboxChannel(delay=60.0, clock=lambda: now[0])
    assert await other.query([handoff]) == []
    now[0] += 60_000
    [delivered] = await other.query([handoff])
    assert (delivered.status, delivered.final) == ("DELIVERED", False)
    now[0] += 60_000
    [read] = await other.query([handoff])
    assert (read.status, read.final) == ("READ", True)
    assert received == []


async def test_registry_builds_one_channel_per_configured_route() -> None:
    routes = build_routes([sandbox_route(delay=1.0), sandbox_route(name="second")])
    assert set(routes) == {"sandbox", "second"}
    assert all(isinstance(c, Channel) for c in routes.values())
    assert routes["sandbox"] is not routes["second"]
    assert routes["second"].name == "second"
    with pytest.raises(UnknownChannel, match="carrier-pigeon"):
        create(RouteConfig("coo", "carrier-pigeon", SandboxOptions()))
