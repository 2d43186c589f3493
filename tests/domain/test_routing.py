"""Which sender, on which route, tries which address, in which order."""

from dataclasses import replace

from opencomms.domain.channels import ChannelType
from opencomms.domain.routing import (
    AccountSenders,
    Address,
    Candidates,
    Planner,
    SenderSpec,
    candidates,
    plan,
    sender_spec,
)
from opencomms.domain.senders import DEFAULT_SENDERS, SenderStatus, sender_id

ACCOUNT = "AC" + "1" * 32
PHONE = Address("+14153902337", "PHONE")
WHATSAPP = Address("+14153902337", "WHATSAPP")
POOL = "comms_senderpool_01h9krwprkeee8fzqspvwy6nq8"
DEFAULTS = [d.record(ACCOUNT) for d in DEFAULT_SENDERS]
SMS_ID, RCS_ID, WA_ID = (
    next(d.id for d in DEFAULTS if d.channel == channel)
    for channel in (ChannelType.SMS, ChannelType.RCS, ChannelType.WHATSAPP)
)


def chosen(spec: SenderSpec | None, available: AccountSenders) -> Candidates:
    found, problems = candidates(spec, available)
    assert not problems and found is not None
    return found


def pairs(found: Candidates, *addresses: Address) -> list[tuple[str, str]]:
    planned = plan(found, list(addresses))
    return (
        [(s.sender.channel, addresses[s.to_index].channel) for s in planned.steps]
        if planned
        else []
    )


def test_without_from_richest_channel_first() -> None:
    found = chosen(None, AccountSenders(DEFAULTS))
    assert pairs(found, PHONE) == [("RCS", "PHONE"), ("SMS", "PHONE")]
    assert pairs(found, WHATSAPP) == [("WHATSAPP", "WHATSAPP")]
    # Connected addresses: the channel order first, each channel trying every address it reaches.
    assert pairs(found, PHONE, WHATSAPP) == [
        ("RCS", "PHONE"),
        ("WHATSAPP", "WHATSAPP"),
        ("SMS", "PHONE"),
    ]
    sms_only = [d for d in DEFAULTS if d.channel == ChannelType.SMS]
    assert pairs(chosen(None, AccountSenders(sms_only)), PHONE, WHATSAPP) == [("SMS", "PHONE")]
    planned = plan(found, [PHONE])
    assert planned is not None
    assert planned.first.sender_id == RCS_ID and planned.first.route == "sandbox"


def test_named_senders_resolve_or_are_refused_on_their_field() -> None:
    available = AccountSenders(DEFAULTS)
    by_id = chosen(SenderSpec(sender_id=SMS_ID), available)
    assert [s.sender_id for s in by_id.senders] == [SMS_ID]
    by_address = chosen(SenderSpec(address="+15005550006", channel="WHATSAPP"), available)
    assert [s.sender_id for s in by_address.senders] == [WA_ID]
    assert pairs(by_address, PHONE) == []  # a WhatsApp sender cannot reach a phone number
    foreign = sender_id("AC" + "2" * 32, "SMS", "+15005550006")
    for spec, context in [
        (SenderSpec(sender_id=foreign), "$.from.senderId"),
        (SenderSpec(address="+15550000000", channel="SMS"), "$.from.address"),
        (SenderSpec(sender_pool_id=POOL), "$.from.senderPoolId"),
    ]:
        found, problems = candidates(spec, available)
        assert found is None
        assert [(p.code, p.context) for p in problems] == [(21212, context)]
    retired = [
        replace(d, status=SenderStatus.DEACTIVATED) if d.id == SMS_ID else d for d in DEFAULTS
    ]
    _, problems = candidates(SenderSpec(sender_id=SMS_ID), AccountSenders(retired))
    assert "deactivated" in problems[0].message


def test_pools_filter_and_order_by_priority_lowest_first() -> None:
    available = AccountSenders(DEFAULTS, pool=DEFAULTS)
    plain = chosen(SenderSpec(sender_pool_id=POOL), available)
    assert pairs(plain, PHONE) == [("RCS", "PHONE"), ("SMS", "PHONE")]
    assert {s.sender_pool_id for s in plain.senders} == {POOL}
    only = chosen(SenderSpec(sender_pool_id=POOL, filter_in=("SMS", "WHATSAPP")), available)
    assert pairs(only, PHONE, WHATSAPP) == [("WHATSAPP", "WHATSAPP"), ("SMS", "PHONE")]
    sms_first = chosen(SenderSpec(sender_pool_id=POOL, priority={"SMS": 0, "RCS": 1}), available)
    assert pairs(sms_first, PHONE) == [("SMS", "PHONE"), ("RCS", "PHONE")]
    empty = chosen(SenderSpec(sender_pool_id=POOL), AccountSenders(DEFAULTS, pool=[]))
    assert empty.senders == () and empty.shown.sender_pool_id == POOL


def test_malformed_priority_items_are_problems_not_crashes() -> None:
    for items in (["SMS"], [None], [[1]], [{"channel": "FAX", "priority": 1}]):
        spec = sender_spec({"senderPoolId": POOL, "channels": {"priority": items}})
        found, problems = candidates(spec, AccountSenders(DEFAULTS, pool=DEFAULTS))
        assert found is None
        assert [(p.code, p.context) for p in problems] == [(20422, "$.from.channels.priority[0]")]


def test_plans_are_shared_per_shape_of_recipient() -> None:
    planner = Planner(chosen(None, AccountSenders(DEFAULTS)))
    first = planner([Address("+14155550100", "PHONE")])
    assert planner([Address("+14155550199", "PHONE")]) is first
    assert planner([Address("+14155550199", "WHATSAPP")]) is not first
    assert first is not None
    assert first.as_json() == [
        [RCS_ID, "sandbox", "RCS", "opencomms_sandbox_agent", 0],
        [SMS_ID, "sandbox", "SMS", "+15005550006", 0],
    ]
