"""The sandbox mailbox: email outcomes scripted by the address's local part."""

import pytest

from opencomms.channels import (
    Handoff,
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    SandboxChannel,
    TransientDeliveryError,
)
from opencomms.channels.sandbox import SLOW_MS

CONTENT = {"subject": "Hi", "html": "<p>Hi</p>"}


def email(to: str, attempt: int = 1) -> OutboundMessage:
    return OutboundMessage("comms_email_x", attempt, "EMAIL", "shop@example.com", to, CONTENT)


async def opened(delay: float = 0.0) -> tuple[SandboxChannel, list[Receipt]]:
    received: list[Receipt] = []
    channel = SandboxChannel(delay=delay)
    await channel.open(received.append)
    return channel, received


@pytest.mark.parametrize(
    ("to", "code"),
    [("fail@example.com", 30007), ("optout@example.com", 21610), ("FAIL+42@shop.test", 30007)],
)
async def test_refused_mailboxes_fail_the_hand_off(to: str, code: int) -> None:
    channel, received = await opened()
    with pytest.raises(PermanentDeliveryError) as refused:
        await channel.send(email(to))
    assert refused.value.code == code
    assert received == [] and channel.inbox.deliveries == []


@pytest.mark.parametrize(
    ("to", "code"), [("bounce@example.com", 30005), ("full+a@example.org", 30003)]
)
async def test_bouncing_mailboxes_are_sent_then_undelivered(to: str, code: int) -> None:
    channel, received = await opened()
    result = await channel.send(email(to))
    assert [(r.external_id, r.status, r.error_code) for r in received] == [
        (result.external_id, "UNDELIVERED", code)
    ]


async def test_anything_else_is_delivered_with_a_message_id_as_identifier() -> None:
    channel, received = await opened()
    result = await channel.send(email("ada@example.com"))
    assert result.external_id == "comms_email_x@sandbox.opencomms.local"
    assert received == [Receipt(result.external_id, "DELIVERED")]
    [delivery] = channel.inbox.for_address("ada@example.com")
    assert delivery.content == CONTENT and delivery.channel == "EMAIL"


async def test_flaky_fails_twice_then_delivers() -> None:
    channel, _ = await opened()
    for attempt in (1, 2):
        with pytest.raises(TransientDeliveryError):
            await channel.send(email("flaky@example.com", attempt))
    await channel.send(email("flaky@example.com", 3))


async def test_slow_stays_sent_for_a_while_however_short_the_delay() -> None:
    channel, received = await opened()
    result = await channel.send(email("slow@example.com"))
    assert received == []  # not pushed at once, unlike every other mailbox
    sent_at = 1_000_000
    handoff = Handoff(result.external_id, "EMAIL", "slow@example.com", 1, sent_at)
    channel._clock = lambda: sent_at + SLOW_MS - 1
    assert await channel.query([handoff]) == []
    channel._clock = lambda: sent_at + SLOW_MS
    assert await channel.query([handoff]) == [Receipt(result.external_id, "DELIVERED")]
    await channel.aclose()
