"""The ranking of Resolve Senders, without a database."""

from opencomms.domain.channels import ChannelType
from opencomms.domain.resolve import (
    ChannelControl,
    RecipientAddress,
    channel_order,
    recipient_problems,
    resolve,
)
from opencomms.domain.senders import SenderRecord, SenderStatus

RCS, SMS, WA, EMAIL = ChannelType.RCS, ChannelType.SMS, ChannelType.WHATSAPP, ChannelType.EMAIL


def sender(
    channel: ChannelType, address: str, status: SenderStatus = SenderStatus.ACTIVATED
) -> SenderRecord:
    return SenderRecord(
        f"id-{channel}-{address}", "AC1", channel, address, "sandbox", status=status
    )


def test_channel_order() -> None:
    assert channel_order(ChannelControl()) == [RCS, WA, SMS, EMAIL]
    assert channel_order(ChannelControl(filter_in=frozenset({"SMS", "RCS"}))) == [RCS, SMS]
    # Named channels first, lowest value first; the rest keep the default order.
    assert channel_order(ChannelControl(priority={"EMAIL": 5, "SMS": 1})) == [SMS, EMAIL, RCS, WA]
    assert channel_order(ChannelControl(frozenset({"PUSH"}))) == []


def test_resolve_prefers_home_country_and_skips_the_unreachable() -> None:
    senders = [
        sender(SMS, "+447700900123"),
        sender(SMS, "+14153902337"),
        sender(SMS, "+14153900000", SenderStatus.DEACTIVATED),
        sender(WA, "+15264013448"),
    ]
    person = [
        RecipientAddress("+447700900999", "PHONE"),
        RecipientAddress("+447700900999", "PHONE"),  # given twice: ranked once
        RecipientAddress("token", "PUSH"),
    ]
    found = resolve(senders, person, ChannelControl())
    assert [(p.sender.address, p.priority) for p in found] == [
        ("+447700900123", 0),
        ("+14153902337", 1),
    ]


def test_resolve_keeps_the_persons_address_order_within_a_channel() -> None:
    senders = [sender(SMS, "+14153902337"), sender(RCS, "agent")]
    person = [RecipientAddress("+14155550101", "PHONE"), RecipientAddress("+14155550100", "PHONE")]
    found = resolve(senders, person, ChannelControl())
    assert [(p.sender.channel, p.to.address) for p in found] == [
        (RCS, "+14155550101"),
        (RCS, "+14155550100"),
        (SMS, "+14155550101"),
        (SMS, "+14155550100"),
    ]


def test_recipient_problems_name_each_bad_number() -> None:
    person = [
        RecipientAddress("+14155550100", "PHONE"),
        RecipientAddress("0044 7700", "WHATSAPP"),
        RecipientAddress("not-checked@example.com", "EMAIL"),
    ]
    assert [(p.code, p.context) for p in recipient_problems(person, "$.r")] == [
        (21614, "$.r[1].address")
    ]
