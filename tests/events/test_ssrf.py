"""The SSRF guard: refused destinations are refused before any connection is opened."""

import ipaddress

import pytest

from opencomms.events.ssrf import DestinationRefused, Guard, literal, networks
from opencomms.store.accounts import NewCredential, SecretBox
from opencomms.store.db import Database
from tests.events.helpers import active_sink, deliverer, emit, lifecycle, settle
from tests.events.receiver import free_port, receiver


class Rebinding:
    """Answers each lookup with the next of `answers` (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        index = min(len(self.lookups), len(self.answers)) - 1
        return self.answers[index]


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("169.254.169.254", "169.254.169.254"),
        ("hooks.example.com", None),
        ("1e100.net", None),
    ],
)
def test_numeric_forms_are_read_as_the_address_they_are(host: str, address: str | None) -> None:
    found = literal(host)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/hook",
        "http://0177.0.0.1/hook",
        "http://0x7f000001/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://0.0.0.0/",
        "ftp://example.com/",
    ],
)
def test_private_literals_are_refused_without_a_lookup(url: str) -> None:
    resolver = Rebinding(["8.8.8.8"])
    with pytest.raises(DestinationRefused):
        Guard(resolver=resolver).check_url(url)
    assert resolver.lookups == []


async def test_every_address_of_a_name_is_checked() -> None:
    guard = Guard(resolver=Rebinding(["8.8.8.8", "10.0.0.7"]))
    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.7"):
        await guard.address_for("mixed.example", 443)
    assert await Guard(resolver=Rebinding(["8.8.8.8"])).address_for("ok.example", 443) == "8.8.8.8"


def test_allowed_networks_let_a_range_through() -> None:
    allowed = networks(["127.0.0.0/8"])
    Guard(allowed).check_url("http://2130706433/hook")
    Guard(allowed).check_url("http://[::ffff:127.0.0.1]/hook")
    with pytest.raises(DestinationRefused):
        Guard(allowed).check_url("http://10.0.0.1/hook")
    assert ipaddress.ip_address("127.0.0.9") in allowed[0]


async def test_dns_rebinding_connects_to_the_address_that_was_checked(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    """The first lookup passes (127.0.0.1 is allowed in tests); a second one would say
    10.0.0.1. There is no second lookup: the connection goes to the checked address."""
    resolver = Rebinding(["127.0.0.1"], ["10.0.0.1"])
    async with receiver() as hook:
        await active_sink(db, box, account.sid, f"http://rebind.example:{hook.port}/hook")
        await emit(db, lifecycle(account.sid, "m1")[:1])
        worker = deliverer(db, resolver=resolver)
        await settle(worker)
    assert resolver.lookups == ["rebind.example"]
    assert list(worker.dialed) == ["127.0.0.1"]
    assert len(hook.requests) == 1
    assert hook.requests[0].headers["host"] == f"rebind.example:{hook.port}"


async def test_a_name_resolving_to_a_private_address_is_never_dialed(
    db: Database, box: SecretBox, account: NewCredential
) -> None:
    resolver = Rebinding(["10.0.0.1"], ["127.0.0.1"])
    async with receiver() as hook:
        sink, _ = await active_sink(db, box, account.sid, f"http://evil.example:{hook.port}/")
        await emit(db, lifecycle(account.sid, "m1")[:1])
        worker = deliverer(db, resolver=resolver)
        await settle(worker)
    assert hook.requests == [] and list(worker.dialed) == []
    async with db.read() as conn:
        from opencomms.events import sinks

        found = await sinks.get_sink(conn, account.sid, sink.sid)
    assert found is not None and found.last_failure_reason is not None
    assert found.last_failure_reason.startswith("refused: 10.0.0.1 is not a public address")


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "[::ffff:127.0.0.1]"])
async def test_numeric_loopback_destinations_are_refused_in_delivery(
    db: Database, box: SecretBox, account: NewCredential, host: str
) -> None:
    port = free_port()
    async with receiver(port) as hook:
        sink, _ = await active_sink(db, box, account.sid, f"http://{host}:{port}/hook")
        await emit(db, lifecycle(account.sid, "m1")[:1])
        worker = deliverer(db, allowed_networks=())  # production defaults: nothing private
        await settle(worker)
    assert hook.requests == [] and list(worker.dialed) == []
    async with db.read() as conn:
        from opencomms.events import sinks

        found = await sinks.get_sink(conn, account.sid, sink.sid)
    assert found is not None and (found.last_failure_reason or "").startswith("refused:")
