"""Which sender and channel try which address, in which order."""

import re

from opencomms.domain.routing import (
    Address,
    SenderSpec,
    display_sender,
    implicit_sender_id,
    plan_routes,
)

PHONE = Address("+14153902337", "PHONE")
WHATSAPP = Address("+14153902337", "WHATSAPP")
POOL = "comms_senderpool_01h9krwprkeee8fzqspvwy6nq8"


def channels(spec: SenderSpec | None, *addresses: Address) -> list[tuple[str, str]]:
    return [(r.sender.channel, r.to.channel) for r in plan_routes(spec, list(addresses))]


def test_default_channels_follow_the_address() -> None:
    assert channels(None, PHONE) == [("SMS", "PHONE")]
    assert channels(None, WHATSAPP) == [("WHATSAPP", "WHATSAPP")]
    assert channels(None, WHATSAPP, PHONE) == [("WHATSAPP", "WHATSAPP"), ("SMS", "PHONE")]


def test_an_explicit_sender_only_reaches_what_its_channel_can() -> None:
    rcs = SenderSpec(address="rbm_agent", channel="RCS")
    assert channels(rcs, PHONE) == [("RCS", "PHONE")]
    assert channels(rcs, WHATSAPP) == []
    [route] = plan_routes(rcs, [PHONE])
    assert route.sender.address == "rbm_agent"


def test_pools_try_rich_channels_first_and_honour_channel_control() -> None:
    assert channels(SenderSpec(sender_pool_id=POOL), PHONE) == [("RCS", "PHONE"), ("SMS", "PHONE")]
    only_sms = SenderSpec(sender_pool_id=POOL, filter_in=("SMS", "WHATSAPP"))
    assert channels(only_sms, PHONE, WHATSAPP) == [("SMS", "PHONE"), ("WHATSAPP", "WHATSAPP")]
    sms_first = SenderSpec(sender_pool_id=POOL, priority={"SMS": 10, "RCS": 1})
    assert channels(sms_first, PHONE) == [("SMS", "PHONE"), ("RCS", "PHONE")]
    [first, _] = plan_routes(SenderSpec(sender_pool_id=POOL), [PHONE])
    assert first.sender.sender_pool_id == POOL


def test_implicit_sender_ids_are_stable_and_well_formed() -> None:
    first = implicit_sender_id("SMS", "+14153901002")
    assert first == implicit_sender_id("SMS", "+14153901002")
    assert first != implicit_sender_id("RCS", "+14153901002")
    assert re.match(r"^comms_sender_[0-7][a-hjkmnpqrstv-z0-9]{25}$", first)


def test_display_sender_shows_what_was_asked() -> None:
    assert display_sender(SenderSpec(address="+1415", channel="WHATSAPP")).channel == "WHATSAPP"
    assert display_sender(None).channel == "SMS"
